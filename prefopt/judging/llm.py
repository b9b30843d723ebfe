"""The LLM judge: any OpenAI-compatible chat-completions endpoint, with the paper's rubric prompt.

Bounded concurrency (a thread pool), a timeout per request, retries with exponential back-off on 429, 5xx and
network errors, and on replies without `Score: N`. Every verdict is appended (flushed and fsynced) to a cache
keyed by (model, template, prompt, response, reference), so a crash or Ctrl-C resumes without asking again.
The API key is read from the environment variable the recipe names and is never logged or written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefopt.errors import UserError
from prefopt.schema import JudgeConfig

DEFAULT_TEMPLATE = Path(__file__).with_name("rubric.txt")
SCORE = re.compile(r"Score:\s*\**\s*([1-5])\b", re.I)


class JudgeFailure(Exception):
    """A request that kept failing after every retry (counted, never silently scored)."""


class VerdictCache:
    """Append-only JSONL of {key, score}; a torn last line (a kill mid-write) is ignored on load."""

    def __init__(self, path: Path):
        self.path, self.lock = path, threading.Lock()
        self.scores: dict[str, int] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    self.scores[rec["key"]] = rec["score"]
                except (json.JSONDecodeError, KeyError):
                    continue
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a")

    def put(self, key: str, score: int) -> None:
        with self.lock:
            self.scores[key] = score
            self.fh.write(json.dumps({"key": key, "score": score}) + "\n")
            self.fh.flush()
            os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


class LLMJudge:
    """Scores (prompt, response, reference) triples by asking a chat model for `Score: N`."""

    def __init__(self, cfg: JudgeConfig, cache_path: Path):
        self.cfg = cfg
        self.key = os.environ.get(cfg.api_key_env, "")
        template_path = Path(cfg.template) if cfg.template else DEFAULT_TEMPLATE
        if not template_path.is_file():
            raise UserError(f"judge.template: no such file {template_path}")
        self.template = template_path.read_text()
        self.cache = VerdictCache(cache_path)
        self.asked = 0  # requests sent in this process (tests read it)

    def _cache_key(self, prompt: str, response: str, reference: str) -> str:
        blob = json.dumps([self.cfg.model, self.template, prompt, response, reference])
        return hashlib.sha256(blob.encode()).hexdigest()

    def _ask(self, content: str) -> str:
        body = json.dumps({"model": self.cfg.model, "temperature": 0,
                           "messages": [{"role": "user", "content": content}]}).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(self.cfg.base_url.rstrip("/") + "/chat/completions", body, headers)
        self.asked += 1
        with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:
            return json.loads(resp.read())["choices"][0]["message"]["content"]

    def score_one(self, prompt: str, response: str, reference: str) -> int:
        """One verdict, from the cache or the endpoint (with retries); raises JudgeFailure when out of retries."""
        key = self._cache_key(prompt, response, reference)
        if key in self.cache.scores:
            return self.cache.scores[key]
        content = self.template.format(prompt=prompt, response=response, reference=reference)
        last = "no attempt"
        for attempt in range(self.cfg.max_retries + 1):
            try:
                m = SCORE.search(self._ask(content))
                if m:
                    score = int(m.group(1))
                    self.cache.put(key, score)
                    return score
                last = "reply without `Score: N`"
            except urllib.error.HTTPError as e:
                if e.code != 429 and e.code < 500:
                    raise JudgeFailure(f"HTTP {e.code} from {self.cfg.base_url}") from None
                last = f"HTTP {e.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, KeyError, IndexError,
                    json.JSONDecodeError) as e:
                last = type(e).__name__
            time.sleep(min(8.0, 0.05 * 2 ** attempt) * (1 + random.random()))
        raise JudgeFailure(last)

    def score_all(self, items: list[tuple[str, str, str]]) -> list[int | None]:
        """Scores for many triples, `concurrency` at a time; None where the judge failed."""

        def one(item):
            try:
                return self.score_one(*item)
            except JudgeFailure:
                return None

        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(one, items))
