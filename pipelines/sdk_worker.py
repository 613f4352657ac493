"""A worker process of a local multi-process build (--direct_running_mode=multi_processing): Beam's SDK harness,
started as `python -m vocaloom.pipelines.sdk_worker` (pipelines/worker_logs.py) instead of Beam's own module.

The one difference: the root logger gets a handler that writes nowhere before Beam is imported. Importing Beam
without its [gcp] extra logs "apitools not found" through the root logger, which then also gets a stderr handler,
and every record of the harness (INFO included) would go to the terminal as well as to the launcher. The harness
sends each record to the launcher, which prints what pipelines/worker_logs.py keeps.
"""

import logging
import sys


def main() -> None:
    logging.getLogger().addHandler(logging.NullHandler())
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
