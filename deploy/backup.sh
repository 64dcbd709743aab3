#!/bin/sh
# Nightly JSON backup of the whole sif-bot database (run by sif-bot-backup.timer).
# Restore into an empty database with `sif-bot import FILE`.
#   BACKUP_DIR  where the files go (default /var/backups/sif-bot)
#   KEEP_DAYS   backups older than this are deleted (default 30)
# DATABASE_URL and the other settings come from the environment (/etc/sif-bot/env).
set -eu

BACKUP_DIR="${BACKUP_DIR:-/var/backups/sif-bot}"
KEEP_DAYS="${KEEP_DAYS:-30}"
out="$BACKUP_DIR/$(date +%F).json"

mkdir -p "$BACKUP_DIR"
# Write to a temporary name first so a failed run never leaves a truncated backup.
sif-bot export --format json --out "$out.partial"
mv "$out.partial" "$out"
find "$BACKUP_DIR" -name '*.json' -type f -mtime +"$KEEP_DAYS" -delete
echo "sif-bot backup written to $out"
