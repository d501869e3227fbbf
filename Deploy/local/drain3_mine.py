#!/usr/bin/env python3
"""Drain3 on one Loghub `*_2k.log_structured.csv` sample, for `mingus-bench --only-mining`.

Reads the Content column, mines it with Drain3 using the Loghub benchmark's Drain settings for
that dataset (depth, similarity threshold, masking regexes of logparser's Drain_benchmark.py),
and prints one cluster id per line in input order, then a last line
`# seconds=<mining time> lines=<lines mined>`. With --repeat N the contents are mined N times
over (one miner, as a longer stream would be) and the cluster ids of the first pass printed.

Usage: drain3_mine.py DATASET FILE [--repeat N]
"""
import csv
import sys
import time

from drain3.masking import MaskingInstruction
from drain3.template_miner import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

# logparser benchmark/Drain_benchmark.py (logpai/logparser): regex, st, depth.
SETTINGS = {
    "HDFS": ([r"blk_-?\d+", r"(\d+\.){3}\d+(:\d+)?"], 0.5, 4),
    "Apache": ([r"(\d+\.){3}\d+"], 0.5, 4),
    "OpenSSH": ([r"(\d+\.){3}\d+", r"([\w-]+\.){2,}[\w-]+"], 0.6, 5),
}


def main() -> None:
    dataset, path = sys.argv[1], sys.argv[2]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    regexes, similarity, depth = SETTINGS[dataset]
    with open(path, newline="", encoding="utf-8") as handle:
        contents = [row["Content"] for row in csv.DictReader(handle)]

    config = TemplateMinerConfig()
    config.drain_sim_th = similarity
    config.drain_depth = depth
    config.drain_max_children = 100
    config.drain_max_clusters = None
    config.masking_instructions = [MaskingInstruction(regex, "*") for regex in regexes]
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)

    first_pass = []
    start = time.perf_counter()
    for round_ in range(repeat):
        for content in contents:
            result = miner.add_log_message(content)
            if round_ == 0:
                first_pass.append(result["cluster_id"])
    seconds = time.perf_counter() - start

    # Drain's clusters only grow more general, so the final partition is the ids as assigned.
    out = sys.stdout
    for cluster_id in first_pass:
        out.write(f"{cluster_id}\n")
    out.write(f"# seconds={seconds:.6f} lines={len(contents) * repeat}\n")


if __name__ == "__main__":
    main()
