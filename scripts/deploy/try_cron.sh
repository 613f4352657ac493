#!/bin/sh
# Tries scripts/deploy/vocaloom-nightly.crontab under a real cron daemon: installs Debian's cron, sets up /srv/vocaloom with
# a text-only nightly config over the bundled sample, installs the crontab line with its time fields replaced by
# "every minute" (the command is the file's, unchanged), starts cron and waits for two scheduled runs.
#     sudo sh scripts/deploy/try_cron.sh        (root: it installs a package, writes /srv/vocaloom and root's crontab)
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
command -v cron >/dev/null || { apt-get update -qq && apt-get install -y -qq cron >/dev/null; }
[ -x /usr/local/bin/vocaloom ] || ln -sf "$(command -v vocaloom)" /usr/local/bin/vocaloom
rm -rf /srv/vocaloom && mkdir -p /srv/vocaloom
printf 'min-bucket = 8\nmax-bucket = 11\nspeech-ratio = 0\n' > /srv/vocaloom/nightly.toml  # the bundled sample, text only
# cron runs jobs with a bare environment: the line must work with PATH=/usr/bin:/bin and no shell profile.
grep -v '^#' "$REPO/scripts/vocaloom-nightly.crontab" | sed 's/^0 3 \* \* \* /* * * * * /' | crontab -
crontab -l
pgrep -x cron >/dev/null || cron
echo "waiting for two runs (up to 200 s)..."
for _ in $(seq 40); do
    [ "$(cat /srv/vocaloom/nightly.log 2>/dev/null | grep -c stage=done)" -ge 2 ] && break
    sleep 5
done
crontab -r
pkill -x cron || true
grep -E 'stage=(build|done)|status=held' /srv/vocaloom/nightly.log
ls -l /srv/vocaloom/LATEST /srv/vocaloom/builds
vocaloom verify /srv/vocaloom/LATEST
