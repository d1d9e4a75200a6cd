"""The longer chaos run behind docs/reliability.md: python -m benchmarks.chaos [ORDERS KILLS [SEED]].

Runs `orderbridge chaos` (Houzz -> TradeGecko, Wix -> Holded, faults injected, the hub SIGKILLed at
random moments) and saves its figures to benchmarks/results/chaos-ORDERS-KILLS.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orderbridge.chaos.run import ChaosOptions, run_chaos

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str]) -> int:
    orders = int(argv[0]) if argv else 500
    kills = int(argv[1]) if len(argv) > 1 else 40
    seed = int(argv[2]) if len(argv) > 2 else 1
    figures = run_chaos(ChaosOptions(orders=orders, kills=kills, seed=seed, drain_timeout=900),
                        lambda line: print(line, file=sys.stderr, flush=True))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"chaos-{orders}-{kills}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
