"""The llm judge against a local chat-completions server that misbehaves: malformed replies, 429s, a crash."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prefopt.judging.llm import LLMJudge
from prefopt.schema import JudgeConfig


class Server:
    """Answers `Score: N` (N from the response text), but every 3rd request gets a 429 and every 4th a reply
    without a score; after `die_after` good answers it stops listening (a crash mid-run)."""

    def __init__(self, die_after=None):
        self.requests, self.scored, self.die_after, self.auth = 0, [], die_after, set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.auth.add(self.headers.get("Authorization"))
                with lock:
                    owner.requests += 1
                    n = owner.requests
                if n % 3 == 0:
                    self.send_response(429)
                    self.end_headers()
                    return
                text = body["messages"][0]["content"]
                response = text.split("Solution to grade:\n")[1].split("\n")[0]
                reply = "I think it is fine." if n % 4 == 0 else f"Looks right.\nScore: {len(response) % 5 + 1}"
                if "Score" in reply:
                    with lock:
                        owner.scored.append(response)
                        if owner.die_after and len(owner.scored) >= owner.die_after:
                            threading.Thread(target=owner.httpd.shutdown).start()
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


ITEMS = [(f"Q{i}", "x" * i, str(i)) for i in range(12)]


def cfg(url):
    return JudgeConfig(kind="llm", base_url=url, model="judge-1", concurrency=3, timeout=5, max_retries=6,
                       api_key_env="PREFOPT_TEST_KEY")


def test_retries_malformed_and_429_then_scores_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFOPT_TEST_KEY", "sk-secret")
    srv = Server()
    try:
        judge = LLMJudge(cfg(srv.url), tmp_path / "cache.jsonl")
        scores = judge.score_all(ITEMS)
    finally:
        srv.close()
    assert scores == [i % 5 + 1 for i in range(12)]
    assert srv.requests > 12  # the 429s and score-less replies were retried
    assert srv.auth == {"Bearer sk-secret"}
    assert "sk-secret" not in (tmp_path / "cache.jsonl").read_text()


def test_crash_mid_run_then_rerun_asks_only_the_rest(tmp_path):
    first = Server(die_after=5)
    judge = LLMJudge(cfg(first.url), tmp_path / "cache.jsonl")
    judge.cfg.max_retries, judge.cfg.timeout = 2, 0.5  # the dead server still accepts connections: time out fast
    scores = judge.score_all(ITEMS)
    first.httpd.server_close()
    answered = [s for s in scores if s is not None]
    assert 5 <= len(answered) < 12 and None in scores  # failures are counted as None, never guessed
    second = Server()
    try:
        rerun = LLMJudge(cfg(second.url), tmp_path / "cache.jsonl")
        final = rerun.score_all(ITEMS)
    finally:
        second.close()
    assert final == [i % 5 + 1 for i in range(12)]
    assert set(second.scored) == {resp for (_, resp, _), s in zip(ITEMS, scores) if s is None}
