# shellcheck shell=sh
# Shared by deploy/install.sh and the .deb's maintainer scripts (installed as
# /usr/share/osq-dbwatch/install-lib.sh), so both install the same way.
# ROOT arguments are a directory prefix ("" for the running system): a
# package build root, or dpkg's $DPKG_ROOT.

OSQ_DBWATCH_USER=osq-dbwatch

# extensions_load_add FILE PATH: add PATH to osquery's autoload list once,
# keeping every other entry. A last line without its newline is completed
# first: appending straight after it would glue the two paths into one that
# names neither extension.
extensions_load_add() {
    if [ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ]; then
        printf '\n' >> "$1"
    fi
    grep -qxF "$2" "$1" 2>/dev/null || printf '%s\n' "$2" >> "$1"
}

# extensions_load_remove FILE PATH: drop the lines that are exactly PATH.
extensions_load_remove() {
    [ -f "$1" ] || return 0
    grep -vxF "$2" "$1" > "$1.dbwatch-tmp" || true
    cat "$1.dbwatch-tmp" > "$1"  # in place: keeps the file's owner and mode
    rm -f "$1.dbwatch-tmp"
}

# _id_in ROOT FILE NAME: the numeric id of NAME in ROOT/etc/passwd or group.
_id_in() {
    awk -F: -v n="$3" '$1 == n { print $3; exit }' "$1/etc/$2" 2>/dev/null
}

# service_account ROOT: the correlator's system user and group (no login, no
# home). Prints the group id.
service_account() {
    if [ -z "$(_id_in "$1" group "$OSQ_DBWATCH_USER")" ]; then
        groupadd ${1:+--prefix "$1"} --system "$OSQ_DBWATCH_USER"
    fi
    if [ -z "$(_id_in "$1" passwd "$OSQ_DBWATCH_USER")" ]; then
        useradd ${1:+--prefix "$1"} --system --gid "$OSQ_DBWATCH_USER" --home-dir /nonexistent \
            --no-create-home --shell /usr/sbin/nologin --comment "osq-dbwatch correlator" "$OSQ_DBWATCH_USER"
    fi
    _id_in "$1" group "$OSQ_DBWATCH_USER"
}

# share_results_log ROOT GID: let group GID read osquery's results log. The
# directory becomes setgid, so the files osqueryd creates there (and creates
# again after every rotation, with --logger_mode 0640) belong to that group;
# the files already there are given to it too. Nobody gains write access, and
# the other bits are left as they are.
share_results_log() {
    _srl_dir="$1/var/log/osquery"
    if [ -L "$_srl_dir" ]; then
        echo "osq-dbwatch: $_srl_dir is a symlink: give group $2 read access to the results log by hand" >&2
        return 0
    fi
    if [ ! -d "$_srl_dir" ]; then
        install -d -o 0 -g "$2" -m 2750 "$_srl_dir"
        return 0
    fi
    chgrp "$2" "$_srl_dir"
    chmod g+rxs,g-w "$_srl_dir"
    for _srl_f in "$_srl_dir"/osqueryd.results.log*; do
        [ -f "$_srl_f" ] && [ ! -L "$_srl_f" ] || continue
        chgrp "$2" "$_srl_f" && chmod g+r,g-w "$_srl_f"
    done
}
