#!/bin/sh
# Runs Apache in the foreground with Debian's environment file, as PID 1 of the
# container; its logs go to the container's output (apache.conf).
# Not `set -u`: Debian's envvars reads variables it may not find set.
set -e
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
exec apache2 -DFOREGROUND "$@"
