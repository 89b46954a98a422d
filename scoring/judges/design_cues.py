"""The phrases the offline system-design judge listens for (:mod:`scoring.judges.system_design`).

Plain data: compiled, case-insensitive regular expressions, one per behaviour, kept apart
from the rules so the wording can grow without touching them.
"""

from __future__ import annotations

import re
from typing import Final


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# -- requirements and scope ----------------------------------------------------------------

FEATURE_TOPIC: Final = _rx(
    r"\b(?:users?|features?|custom|alias(?:es)?|expir\w*|analytics|support|in scope|channels?|"
    r"templates?|schedul\w*|preferences?|priorit(?:y|ies)|unsubscribe|who|callers?|internal|"
    r"external|edit|delete|update|read|write|mobile|web|guarantee|order(?:ing)?|urgent)\b"
)
QUESTION_OPENER: Final = _rx(
    r"^\s*(?:can|could|will|would|should|is|are|do|does|may|what|how|who|which|and|also|"
    r"just|so)\b|\b(?:do we|should we|is it|are there|is there|can I assume|should I assume)\b"
)
REQUIREMENTS: Final = _rx(
    r"\bfunctional requirements?\b|\bthe core (?:features?|use cases?|flows?) (?:are|is)\b|"
    r"\brequirements?:|\bmust be able to\b|\bneeds? to support\b|\bthe (?:main|key) requirements?\b"
)
NONFUNCTIONAL_KINDS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "latency",
        _rx(
            r"\blatency\b|\bp9[59]\b|\bmilliseconds\b|\b\d+\s?ms\b|"
            r"\bwithin (?:a few |\d+ )?seconds\b|\breal-?time\b"
        ),
    ),
    ("availability", _rx(r"\bavailab\w*|\buptime\b|\bnines\b|\b99\.9")),
    ("consistency", _rx(r"\bconsisten\w*|\beventual(?:ly)?\b|\blinearizab\w*|\bstrongly\b")),
    ("durability", _rx(r"\bdurab\w*|\bnever lose\b|\bnot lose\b|\bdata loss\b")),
    (
        "delivery guarantee",
        _rx(
            r"\bat[- ]least[- ]once\b|\bat[- ]most[- ]once\b|\bexactly[- ]once\b|\bdelivery guarantee"
        ),
    ),
)
RATE: Final = _rx(
    r"\d[\d,.]*\s*(?:k|K|m|M|million|billion|thousand)?\s*"
    r"(?:per second|/\s?s(?:ec)?\b|qps\b|rps\b|(?:writes?|reads?|requests?|redirects?|"
    r"notifications?|messages?|sends?) (?:a|per) second|a second\b|per day\b|a day\b|"
    r"TB\b|GB\b|PB\b|terabytes?|gigabytes?|bytes\b)"
)
COMPUTED: Final = _rx(
    r"≈|~\s?\d|\babout \d|\broughly\b|\baround \d|\bso that'?s\b|\bwhich is\b|\bdivided\b|"
    r"\btimes\b|\d\s?[*x\u00d7/]\s?\d|\bthat'?s (?:about|roughly|around)\b"
)
SCOPE: Final = _rx(
    r"\bout of scope\b|\bin scope\b|\bI'?ll (?:leave|skip|park|ignore|set aside)\b|"
    r"\bleave [\w ]{1,30} for later\b|\bstretch goal\b|\bI'?ll assume\b|\blet'?s assume\b|"
    r"\bI'?ll focus on\b|\blet'?s focus on\b|\bnot (?:going to )?(?:cover|design) [\w ]{1,20} (?:now|today)\b"
)
ASKED_SCALE: Final = _rx(
    r"\bper second\b|\bhow much (?:traffic|storage|data|load)\b|\bhow many\b|\bnumbers?\b|"
    r"\bestimate\b|\brate\b"
)
NUMBER: Final = re.compile(r"\d")

# -- high-level design ---------------------------------------------------------------------

COMPONENT: Final = _rx(
    r"\b(?:load balancers?|api (?:servers?|gateway)|app(?:lication)? servers?|web servers?|servers?|"
    r"services?|databases?|db|cache|caches|redis|memcached|queues?|kafka|rabbitmq|sqs|"
    r"workers?|consumers?|producers?|cdn|object store|s3|cassandra|dynamodb|postgres|mysql|"
    r"key-?value store|scheduler|key generator|dispatcher|gateway|topics?|streams?)\b"
)
API: Final = _rx(
    r"\b(?:POST|GET|PUT|DELETE|PATCH)\s+/|\b\w+\(\s*\w+(?:\s*,\s*\w+)+\s*\)|"
    r"\breturns? (?:a |an |the )?(?:201|202|301|302|404|410)\b"
)
API_WORD: Final = _rx(r"\b(?:endpoints?|api)\b")
DATA_MODEL: Final = _rx(
    r"\btables?\b|\bschema\b|\bcolumns?\b|\bprimary key\b|\bpartition key\b|\bsort key\b|"
    r"\bkey-?value\b|\bkeyed (?:by|on)\b|\b(?:document|wide-?column|relational) (?:store|database|db)\b|"
    r"\bindex(?:ed)? on\b|\brows?\b|\bfields?\b|\brecords?\b"
)
FLOW: Final = _rx(
    r"→|->|\bgoes to\b|\bputs? (?:it |them )?on\b|\bconsume[sd]?\b|\bpicks? (?:it |them )?up\b|"
    r"\breads? from\b|\bwrites? (?:it |them )?to\b|\bsends? (?:it |them )?to\b|\bforwards?\b|"
    r"\bpushes (?:it |them )?to\b|\bpublish(?:es)?\b|\benqueues?\b|\bdequeues?\b|"
    r"\bhands? (?:it |them )?(?:off )?to\b|\broutes?\b|\blooks? (?:it )?up\b|\bhits? the\b|"
    r"\bcomes? in\b|\bthen the\b|\bfrom there\b"
)
TECH: Final = _rx(
    r"\b(?:kafka|redis|cassandra|dynamodb|mongodb|mongo|postgres(?:ql)?|mysql|microservices?|"
    r"kubernetes|k8s|docker|elasticsearch|load balancers?|cdn|nosql|graphql|grpc|rabbitmq|"
    r"sqs|sns|lambda|serverless|spark|hadoop|memcached|zookeeper|api gateway|nginx|s3|"
    r"cach(?:e|ing))\b"
)
REASONED: Final = _rx(
    r"\b(?:because|since|so that|so we|so it|which (?:means|gives|lets|keeps)|that way|"
    r"to (?:handle|avoid|keep|make|get|spread|absorb|decouple|isolate|protect|serve)|"
    r"fits|trade-?offs?|otherwise)\b"
)

# -- deep dive and trade-offs --------------------------------------------------------------

COMPARE: Final = _rx(
    r"\b(?:vs\.?|versus|instead of|rather than|alternatively|trade-?offs?|on the other hand|"
    r"the downside|downsides?|upside|at the cost of|pros|cons|compared (?:to|with)|"
    r"(?:one|the other|another|second|first) option|option (?:a|b|one|two)|or we could|"
    r"better than|worse than|instead|I'?d trade)\b"
)
WHY: Final = _rx(
    r"\b(?:because|since|but|which means|costs?|cheaper|slower|faster|simpler|harder|wastes?|"
    r"risk|so (?:we|it|the)|that way|otherwise)\b"
)
JUSTIFY: Final = _rx(
    r"\b(?:because|since|so that|which gives|that way|that'?s why|the reason|"
    r"so we (?:can|don'?t)|to (?:avoid|keep|make sure|absorb|decouple|spread|isolate|protect))\b"
)
DEPTH: Final = _rx(
    r"\b(?:base ?62|counter|ranges?|collisions?|hash(?:ing|es)?|ttl|lease|offsets?|commit(?:ted)?|"
    r"acks?|acknowledge\w*|exactly[- ]once|at[- ]least[- ]once|idempoten\w*|backoff|jitter|"
    r"consistent hashing|write-?ahead|quorum|leader|replica\w*|snowflake|bloom filter|lru|"
    r"evict\w*|token bucket|sliding window|dead[- ]letter|visibility timeout|partition\w*|"
    r"shard\w*|batch\w*|checkpoint\w*|fan-?out|pre-?generat\w*|301|302|circuit[- ]breakers?|"
    r"dedup\w*|rate limit\w*)\b"
)
ASKED_TRADEOFF: Final = _rx(
    r"\btrade-?offs?\b|\balternatives?\b|\bwhy (?:did|would) you\b|\bwhy not\b|"
    r"\bcompared with\b|\bother options?\b"
)
ONLY_OPTION: Final = _rx(
    r"\bjust use\b|\bobviously\b|\balways use\b|\bthe only (?:way|option)\b|"
    r"\bindustry standard\b|\beveryone uses\b"
)
ASKED_DEEP: Final = _rx(
    r"\bhow (?:would|does|do|will|exactly)\b|\bwhat happens\b|\bwalk me through\b|"
    r"\bin more detail\b|\bgo deeper\b"
)
GENERIC: Final = _rx(
    r"\bit (?:just )?works\b|\bit handles (?:it|that)\b|\bthat'?s handled by\b|"
    r"\bthe (?:cloud|framework|database|kafka|redis) (?:handles|takes care of) (?:it|that)\b"
)

# -- scalability and reliability -----------------------------------------------------------

BOTTLENECK: Final = _rx(
    r"\bbottlenecks?\b|\bhot (?:keys?|spots?|partitions?|shards?|links?)\b|\bread-?heavy\b|"
    r"\bwrite-?heavy\b|\bthe (?:limiting|slow) (?:part|factor)\b|"
    r"\bwould (?:fall over|saturate|be overwhelmed)\b|\bcontention\b|\bthroughput limit\b|"
    r"\breads? (?:outnumber|dominate)\b|\b\d+\s?(?::|to)\s?1\b"
)
SCALE_TECH: Final = _rx(
    r"\bshard\w*|\bpartition\w*|\bconsistent hashing\b|\bcach\w*|\bcdn\b|\bread replicas?\b|"
    r"\breplicat\w*"
)
SCALE_SPECIFIC: Final = _rx(
    r"\b(?:partitioned |sharded |split )?by (?:user|channel|key|id|region|hash|priority|tenant|"
    r"short|the short|the key|customer|provider)\w*|\bkeyed (?:by|on)\b|\bpartition key\b|"
    r"\bshard key\b|\b\d+ (?:shards|partitions|replicas|nodes)\b|\bhit rate\b|\bttl\b|\blru\b|"
    r"\bevict\w*|\bhot (?:links|keys)\b|\bper[- ](?:channel|provider|priority)\b"
)
FAILURE_KINDS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("retries", _rx(r"\bretr(?:y|ies|ied)\b")),
    ("idempotency", _rx(r"\bidempoten\w*|\bdedup\w*")),
    ("dead-letter queue", _rx(r"\bdead[- ]letter\b|\bdlq\b")),
    ("circuit breakers", _rx(r"\bcircuit[- ]breakers?\b")),
    ("failover", _rx(r"\bfail ?over\b|\bstandby\b|\bfallback\b|\bfall back\b")),
    ("graceful degradation", _rx(r"\bdegrad\w*|\bbackpressure\b|\bback-pressure\b|\bshed\w*")),
    ("backoff", _rx(r"\bbackoff\b|\bback off\b")),
    ("replication", _rx(r"\breplicat\w*|\breplicas?\b")),
)
MONITORING: Final = _rx(
    r"\bmetrics?\b|\bmonitor\w*|\balerting\b|\balert on\b|\bpage (?:the )?on-?call\b|"
    r"\bdashboards?\b|\bobservability\b|\btracing\b|\bslos?\b|\bqueue (?:depth|lag)\b|"
    r"\bconsumer lag\b"
)
SINGLE: Final = _rx(r"\b(?:a single|one) (?:database|db|server|instance|machine|node|box)\b")
REDUNDANT: Final = _rx(
    r"\breplica\w*|\bfail ?over\b|\bstandby\b|\bbackup\b|\bcluster\b|\bredundan\w*|"
    r"\bsingle point of failure\b"
)
ASKED_FAILURE: Final = _rx(
    r"\b(?:goes|went|is) down\b|\bfails?\b|\bcrash\w*|\boutage\b|\btiming out\b|\bunavailable\b"
)
HAND_WAVE: Final = _rx(
    r"\bjust (?:add|scale|throw)\b|\badd more (?:servers|machines|instances|nodes)\b|"
    r"\bscale (?:it )?(?:horizontally|up|out)\b|\bit (?:will|would|should) scale\b|"
    r"\buse the cloud\b|\bauto-?scal\w*|\bkubernetes (?:will|would) (?:handle|scale)\b"
)
ASKED_GROWTH: Final = _rx(r"\bten times\b|\b10x\b|\bgrows?\b|\bpeak\b|\bscale\b")

# -- communication -------------------------------------------------------------------------

STRUCTURE: Final = _rx(
    r"\bI'?ll start (?:with|by)\b|\blet me start (?:with|by)\b|\bfirst,? (?:I'?ll|let'?s|let me)\b|"
    r"\bthen (?:I'?ll|we'?ll|let'?s)\b|\bmy plan\b|\bthe plan is\b|\bstep (?:one|1)\b|"
    r"\bto (?:summari[sz]e|recap)\b|\blet me (?:recap|summari[sz]e|structure)\b|"
    r"\b(?:two|three|four) (?:parts|things|steps)\b|\bnext,? (?:I'?ll|let'?s)\b"
)
CHECK_IN: Final = _rx(
    r"\bdoes (?:that|this) (?:make sense|sound (?:right|good|reasonable))\b|"
    r"\bshould I (?:go|dig|dive|focus|continue|move)\b|\bwould you like (?:me )?to\b|"
    r"\bdo you want me to\b|\bis (?:that|this) (?:okay|ok|reasonable|what you|the right)\b|"
    r"\bshall I\b|\bany (?:part|area) you'?d like\b|\bwhich (?:part|area) (?:should|would)\b"
)
IGNORES: Final = _rx(
    r"\bnot important\b|\bdoesn'?t (?:really )?matter\b|\bI'?d rather (?:talk|not)\b|"
    r"\blet'?s not worry\b|\bmoving on\b|\bnot needed\b|\bno need\b"
)
