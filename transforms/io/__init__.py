"""Reading inputs and writing the dataset: input formats and records, spill files, shards, rejects, the commit
and its report."""
