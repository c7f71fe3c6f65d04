"""The dbwatch query pack: SQL sources with checked headers, rendered into
osquery packs, osquery.conf.d fragments and a Fleet GitOps bundle."""
