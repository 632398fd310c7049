#!/bin/sh
# Entrypoint of the container image (deploy/Containerfile): gives the broker
# its admin user, then runs it in this process (exec), so signals reach it.
#
# The password file is $STRATA_DATA/passwd, the one the image's config
# (deploy/container.yaml) names; `strata passwd` writes it (hashes only).
#   - A secret file gives the password of the user admin (its first line),
#     set again on every start: the file named by STRATA_ADMIN_PASSWORD_FILE
#     (it must exist; set but empty: none), else
#     /run/secrets/strata_admin_password when it exists.
#   - Without one, the first start (no password file yet) creates admin with
#     a random password and prints it once, on the line
#       strata first start: admin password PASSWORD (shown only this once)
#     Later starts find the password file and print nothing.
#
# Paths, for running it outside the image (defaults: the image's):
#   STRATA_CONFIG  /etc/strata/strata.yaml
#   STRATA_DATA    /var/lib/strata
#   STRATA_BIN     /usr/local/bin/strata
# Arguments are passed on to strata.
set -eu

config="${STRATA_CONFIG:-/etc/strata/strata.yaml}"
data="${STRATA_DATA:-/var/lib/strata}"
strata="${STRATA_BIN:-/usr/local/bin/strata}"
passwd="$data/passwd"

die() {
    echo "strata entrypoint: $*" >&2
    exit 2
}

if [ "${STRATA_ADMIN_PASSWORD_FILE+set}" = set ]; then
    secret="$STRATA_ADMIN_PASSWORD_FILE"
    if [ -n "$secret" ] && [ ! -f "$secret" ]; then
        die "STRATA_ADMIN_PASSWORD_FILE: no file $secret"
    fi
elif [ -e /run/secrets/strata_admin_password ]; then
    secret=/run/secrets/strata_admin_password
else
    secret=
fi

if [ -n "$secret" ]; then
    "$strata" passwd "$passwd" admin <"$secret" || die "cannot set the admin password from $secret"
elif [ ! -e "$passwd" ]; then
    # 24 of 62 characters: 142 bits.
    password="$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24)"
    [ "${#password}" -eq 24 ] || die "cannot read /dev/urandom"
    # printf is built in: the password is in no process's arguments.
    printf '%s\n' "$password" | "$strata" passwd "$passwd" admin || die "cannot create $passwd"
    echo "strata first start: admin password $password (shown only this once)"
    password=
fi

exec "$strata" --config "$config" "$@"
