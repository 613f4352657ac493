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

from scripts.recipes import teacher_text
from vocaloom import assets

IN_DOMAIN_PER_SOURCE = 100
OUT_OF_TRAINING_COUNT = 200
SEED = 0


def missing_packages() -> str | None:
    """One line naming the Debian packages the sets are read from that are not installed, or None."""
    import shutil

    import corpus_sources as c

    needs = [
        ("bible-kjv", shutil.which("bible")),
        ("fortunes", c.FORTUNE_DIR.is_dir()),
        ("dict-gcide", c.GCIDE_DICT.is_file()),
        ("wordnet-base", c.WORDNET_DIR.is_dir()),
        ("dict-devil", c.DEVIL_DICT.is_file()),
        ("r-cran-janeaustenr", c.AUSTEN_DATA.with_suffix(".rdb").is_file()),
        ("iso-codes", c.ISO_CODES_DIR.is_dir()),
        ("tzdata", c.ZONE_TABLE.is_file()),
        ("netbase", c.SERVICES.is_file()),
    ]
    absent = [package for package, present in needs if not present]
    return f"not installed: apt-get install {' '.join(absent)}" if absent else None


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"{path}: {len(lines)} lines", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(assets.EVAL_SENTENCES.parent))
    args = parser.parse_args(argv)
    if problem := missing_packages():
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
