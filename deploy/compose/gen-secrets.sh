#!/bin/sh
# Makes the secrets of the compose deployment in secrets/, those that do
# not exist yet: PostgreSQL's password (and the pgpass file evident reads
# it from), Grafana's admin password, and the three API tokens (admin,
# ingest, read) in the form of "evident token generate". They stay on this
# host: secrets/ is ignored by git. Print a token with
# cat secrets/ingest_token.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
# The containers' users (evident's 65532, postgres, prometheus, grafana)
# are not this one: the files are readable, the directory is not.
chmod 700 secrets

# random BYTES: that many random bytes in lowercase base32, no padding.
random() { head -c "$1" /dev/urandom | base32 -w0 | tr -d '=' | tr 'A-Z' 'a-z'; }

put() { # put NAME VALUE: writes secrets/NAME unless it exists, without a
  # newline (not every reader of a secret file trims one).
  if [ ! -e "secrets/$1" ]; then
    printf '%s' "$2" > "secrets/$1"
    chmod 644 "secrets/$1"
    echo "made secrets/$1"
  fi
}

put pg_password "$(random 24)"
put pgpass "postgres:5432:evident:evident:$(cat secrets/pg_password)"
put grafana_password "$(random 18)"
for t in admin ingest read; do
  put "${t}_token" "evd_$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')_$(random 32)"
done
