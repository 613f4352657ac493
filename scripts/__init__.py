"""Tools beside the package, run from the repository root as modules (`python3 -m scripts.ci.fetch_wheelhouse`):
ci/ sets up and runs CI, recipes/ rebuild the bundled assets, bench/ measures what the docs report, and deploy/
holds the nightly build's schedules. None of it ships in the wheel; what other code imports lives in the package.
"""
