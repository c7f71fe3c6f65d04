#!/bin/sh
# Records the kernel's EXECVE audit records of real database commands with more
# than ten arguments (tests/data/execve_argv_records.log; tests/test_cmdline_argv_order.py).
# Run as root on a host with auditd installed and no other audit user:
#   sh tests/data/record_execve_argv.sh > tests/data/execve_argv_records.log
# The commands fail to connect (no server needed): the exec is what is recorded.
set -u
KEY=argvtest
auditctl -a always,exit -F arch=b64 -S execve -k "$KEY" >/dev/null
run() { timeout 5 "$@" </dev/null >/dev/null 2>&1; }
run psql -h db.example.invalid -p 5432 -U app -d shop -c "\\copy customers to '/tmp/x.csv' csv"
run psql -X -h db.example.invalid -p 5432 -U app -d shop -c "\\copy (select id, name, email from customers where created > now() - interval '30 days') to '/tmp/recent customers.csv' with (format csv, header)"
run pg_dump -h db.example.invalid -p 5432 -U app -F c -f /tmp/shop.dump -t customers -t orders shop
run mysql -h 127.0.0.9 -P 3306 -u app -pS3CRET-my -D shop --batch -e "SELECT * FROM customers INTO OUTFILE '/tmp/c.csv'"
run mysqldump -h 127.0.0.9 -P 3306 -u root -pS3CRET-dump --single-transaction --routines -r /tmp/all.sql shop customers orders
run mongosh --host 127.0.0.9 --port 27017 -u admin -p S3CRET-mongo --authenticationDatabase admin --quiet --eval "db.customers.find().toArray()" shop
run redis-cli -h 127.0.0.9 -p 6379 --user default -a S3CRET-redis --no-auth-warning --rdb /tmp/dump.rdb
run pg_dumpall -h db.example.invalid -p 5432 -U postgres -l postgres --clean --if-exists -f /tmp/cluster.sql
run mariadb -h 127.0.0.9 -P 3306 -u app --password=S3CRET-maria -D shop -B -N -e "select * from customers" --tee=/tmp/tee.out
run mariadb-dump -h 127.0.0.9 -P 3306 -u root -pS3CRET-mdump --single-transaction --quick --result-file=/tmp/m.sql shop customers
run sqlite3 -batch -bail -header -csv -readonly -nullvalue NULL -cmd ".output /tmp/users.csv" /tmp/argvtest-app.db "select * from users;"
sleep 1
auditctl -d always,exit -F arch=b64 -S execve -k "$KEY" >/dev/null
ausearch -k "$KEY" --raw | grep '^type=EXECVE'
