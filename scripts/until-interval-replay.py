#!/usr/bin/env python3
"""Replays an `--until-interval` run's results file: when the agreement's
confidence sequence first reached the target, against the rows the run sent.

    python3 scripts/until-interval-replay.py RESULTS.jsonl [BATCH_SIZE]

The sequence is core/src/anytime.rs's (Waudby-Smith & Ramdas predictable
plug-in empirical-Bernstein, without replacement, bets aimed at the target),
re-implemented step for step; its last figures match the summary's `precision`
block. It prints, for the rows fed in the order they became final (what the
engine did before issue 23's row-order change) and in row order (after it):
the first row count at which the half-width was at most the target, checked
after every row and at every batch end the run actually reached; and how many
rows were final when each batch report could be made (all its rows final).
"""
import json
import math
import sys


class Side:
    def __init__(self):
        self.t = 0
        self.sum = self.sum_sq = self.weighted = self.bets = self.penalty = 0.0

    def push(self, y, log_inv_alpha, population, aim):
        t = self.t + 1
        variance = (0.25 + self.sum_sq) / t
        bet = min(aim / variance, 0.5)
        mean_before = 0.0 if self.t == 0 else self.sum / self.t
        left = max(population - t + 1.0, 1.0)
        shift, weight = self.sum / left, (t - 1.0) / left
        self.weighted += bet * (y + shift)
        self.bets += bet * (1.0 + weight)
        self.penalty += (y - mean_before) ** 2 * (-math.log(1.0 - bet) - bet)
        self.sum += y
        self.t += 1
        regularized = min((0.5 + self.sum) / (t + 1.0), 1.0)
        self.sum_sq += (y - regularized) ** 2

    def lower(self, log_inv_alpha):
        if self.bets == 0:
            return -math.inf
        return min((self.weighted - log_inv_alpha - self.penalty) / self.bets, 1.0)


class Sequence:
    def __init__(self, population, aim, alpha=0.05):
        self.log_inv_alpha = math.log(2 / alpha)
        self.population, self.aim = population, aim
        self.low, self.high = Side(), Side()
        self.bounds = (0.0, 1.0)

    def push(self, x):
        self.low.push(x, self.log_inv_alpha, self.population, self.aim)
        self.high.push(1 - x, self.log_inv_alpha, self.population, self.aim)
        lo = self.low.lower(self.log_inv_alpha)
        hi = 1 - self.high.lower(self.log_inv_alpha)
        self.bounds = (max(self.bounds[0], lo), min(self.bounds[1], hi))

    def half_width(self):
        lo, hi = (min(max(b, 0.0), 1.0) for b in self.bounds)
        return (hi - lo) / 2


def main():
    path = sys.argv[1]
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    lines = [json.loads(l) for l in open(path)]
    run = lines[0]["run"]
    rows = [l for l in lines[1:] if "row" in l]
    w = run["untilInterval"]
    population = run["sample"]["csvRows"]
    print(f"{len(rows)} rows final, target ±{w}, population {population}, batches of {batch}")

    # Answer order: when the sequence first reached ±w, checked after every row.
    seq, first = Sequence(population, w), None
    for i, r in enumerate(rows):
        if r["prediction"] is not None:
            seq.push(1.0 if r["agreement"] else 0.0)
            if first is None and seq.half_width() <= w:
                first = i + 1
    print(f"answer order: first at ±{w} after {first} rows final (checked every row); "
          f"at the end ±{seq.half_width():.4f} over {seq.low.t} rows")

    # When each batch report could be made: every row of it (and before) final.
    position = {r["row"]: i + 1 for i, r in enumerate(rows)}
    reported, report_at = 0, []
    for b in range(0, max(position) // batch + 1):
        last = max(position.get(x, math.inf) for x in range(b * batch, (b + 1) * batch))
        reported = max(reported, last)
        if reported == math.inf:
            break
        report_at.append(reported)
    print(f"batch reports that could be made: {len(report_at)}; rows final at each "
          f"(every 5th): {report_at[::5]}")

    # Row order: the sequence over the prefix of final rows, checked at batch ends.
    seq, first_row, first_batch, k = Sequence(population, w), None, None, 0
    while k in position:
        r = rows[position[k] - 1]
        k += 1
        if r["prediction"] is not None:
            seq.push(1.0 if r["agreement"] else 0.0)
        if first_row is None and seq.low.t and seq.half_width() <= w:
            first_row = k
        if first_batch is None and k % batch == 0 and seq.low.t and seq.half_width() <= w:
            first_batch = k
    print(f"row order: first at ±{w} at row {first_row} (every row), {first_batch} "
          f"(batch ends); rows in order at the end {k}, ±{seq.half_width():.4f} over "
          f"{seq.low.t} compared")
    if first_batch:
        print(f"rows final beyond the row-order stop: {len(rows) - first_batch}")


main()
