"""Scale-out: one run split into shards driven by local worker processes or Ray actors.

``shardrun`` runs one shard in the current process, ``merge`` folds shard results into the run
directory, ``workers`` and ``rayrun`` start the shards (processes, Ray actors) with a
synchronized start. The parent computes ``summary.csv`` once, on the merged data.
"""
