"""TRL's anchor workload (../shared/bench/trl_dpo_bench.py) with prefopt's benchmark sizes added (e.g. SIZE=small,
the CPU point of issue #11), so both systems run the same shapes. Run it with TRL's Python (a separate virtualenv
on CPU); `benchmarks/vs_trl.sh` does. TRL_ANCHOR overrides the anchor script's path.
"""

import importlib.util
import os
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from dpo_throughput import SIZES  # noqa: E402  (stdlib-only at import time)

anchor = Path(os.environ.get("TRL_ANCHOR", here.parent.parent / "shared" / "bench" / "trl_dpo_bench.py"))
spec = importlib.util.spec_from_file_location("trl_dpo_bench", anchor)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
bench.SIZES.update({k: v for k, v in SIZES.items() if k not in bench.SIZES})
bench.main()
