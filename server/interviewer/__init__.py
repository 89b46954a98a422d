"""The AI interviewer: the per-session engine and the LLM providers it speaks through."""
