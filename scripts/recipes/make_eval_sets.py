"""Write the text-to-token evaluation sets: the in-domain held-out sentences and one file per domain that never
enters training (scripts/recipes/teacher_text.py says where each comes from).

    apt-get install -y bible-kjv fortunes dict-gcide wordnet-base dict-devil r-cran-janeaustenr iso-codes tzdata netbase
    python3 -m pip install -c constraints.txt -e ".[eval]"
    python3 -m scripts.recipes.make_eval_sets

Writes assets/eval/sentences.txt (IN_DOMAIN_PER_SOURCE per training source) and assets/eval/<domain>.txt
(OUT_OF_TRAINING_COUNT each), one line each, deterministic given the installed packages and Python version.
"""

import argparse
import sys
from pathlib import Path

from scripts.recipes import corpus_sources, teacher_text
from vocaloom import assets

IN_DOMAIN_PER_SOURCE = 100
OUT_OF_TRAINING_COUNT = 200
SEED = 0


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"{path}: {len(lines)} lines", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(assets.EVAL_SENTENCES.parent))
    args = parser.parse_args(argv)
    if problem := corpus_sources.missing_packages(*teacher_text.PACKAGES, *teacher_text.OUT_OF_TRAINING_PACKAGES):
        parser.error(problem)
    out = Path(args.out)
    train, held_out = teacher_text.split_corpus()
    write_lines(
        out / assets.EVAL_SENTENCES.name, teacher_text.eval_sentences(train, held_out, IN_DOMAIN_PER_SOURCE, SEED)
    )
    for domain in teacher_text.OUT_OF_TRAINING:
        write_lines(out / f"{domain}.txt", teacher_text.out_of_training_sentences(domain, OUT_OF_TRAINING_COUNT, SEED))


if __name__ == "__main__":
    main()
