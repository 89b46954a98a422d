-- When each erased account was erased (DELETE /v1/me): tokens issued before then are refused
-- (server/account_erasures.py). The user is named by the SHA-256 of their id, so no plain
-- identifier outlives the account.
CREATE TABLE account_erasures (
    user_hash text PRIMARY KEY,
    erased_at double precision NOT NULL  -- Unix seconds
);
