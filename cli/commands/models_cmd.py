"""List registered model versions, newest first: aliases, scores and promotion decisions.

Without --strategy every tradeflow-* model is listed. The champion is marked with '*'.
Columns: out-of-sample AUC and Sharpe from training (walk-forward, after fees), the train
window's end, and the last promotion decision with the challenger and champion scores.
"""

from __future__ import annotations

import argparse

REASON_WIDTH = 70


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", metavar="PATH", help="only this strategy's model")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from cli.profile import settings_from
    from models import registry
    from tradeflow.strategy import load_strategy

    settings = settings_from(args)
    registry.configure_tracking(settings)
    if args.strategy:
        names = [load_strategy(args.strategy).model_name]
    else:
        names = registry.list_model_names()
    rows = []
    for name in names:
        for v in registry.list_versions(name):
            tags = v.tags
            reason = tags.get("promotion.reason", "")
            rows.append({
                "model": name,
                "version": ("*" if v.is_champion else " ") + v.version,
                "aliases": ",".join(v.aliases) or "-",
                "train_end": tags.get("train_end", "-"),
                "oos_auc": tags.get("oos.auc", "-"),
                "oos_sharpe": tags.get("oos.sharpe", "-"),
                "trades": tags.get("oos.trade_count", "-"),
                "decision": tags.get("promotion.decision", "-"),
                "challenger": tags.get("promotion.challenger_score", "-"),
                "champion": tags.get("promotion.champion_score", "-"),
                "reason": reason if len(reason) <= REASON_WIDTH
                else reason[: REASON_WIDTH - 3] + "...",
            })
    if not rows:
        where = f" for {names[0]}" if args.strategy else ""
        print(f"no registered model versions{where} in {settings.mlflow_tracking_uri}; "
              "train one with `tradeflow train --strategy ...`")
        return 0
    with pd.option_context("display.width", 250, "display.max_colwidth", REASON_WIDTH):
        print(pd.DataFrame(rows).to_string(index=False))
    print("\n* = champion")
    return 0
