"""Many PyMySQL clients with the driver's default autocommit off, all connected at once,
each running short transactions through the proxy.

Usage: pymysql_autocommit.py HOST PORT USER PASSWORD DB CLIENTS TXNS FIRST_USER_ID
Client i updates user FIRST_USER_ID + i. Prints one line per failure and exits 1 if any.
"""
import sys
import threading

import pymysql

SERVER_STATUS_IN_TRANS = 1
SERVER_STATUS_AUTOCOMMIT = 2


def main():
    host, port, user, password, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    clients, txns, first = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
    failures = []
    lock = threading.Lock()
    connected = threading.Barrier(clients)

    def fail(i, what):
        with lock:
            failures.append("client %d: %s" % (i, what))

    def client(i):
        conn = None
        try:
            conn = pymysql.connect(host=host, port=port, user=user, password=password,
                                   database=db, connect_timeout=30, read_timeout=60)
            if conn.get_autocommit():
                fail(i, "autocommit is on after connect")
            connected.wait(timeout=120)  # every client holds its connection from here on
            uid = first + i
            with conn.cursor() as cur:
                for _ in range(txns):
                    cur.execute("UPDATE users SET score = score + 1 WHERE user_id = %s", (uid,))
                    if not conn.server_status & SERVER_STATUS_IN_TRANS:
                        fail(i, "status after UPDATE says no transaction: %#x" % conn.server_status)
                    conn.commit()
                    if conn.server_status & (SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT):
                        fail(i, "status after COMMIT: %#x" % conn.server_status)
                # A read-only transaction over every shard, ended by ROLLBACK.
                cur.execute("SELECT COUNT(*) FROM users")
                cur.fetchall()
                conn.rollback()
        except Exception as e:  # noqa: BLE001 - report every failure
            fail(i, repr(e))
            connected.abort()
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in failures[:20]:
        print(f)
    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
