<?php
// A Workerman TCP echo server written to run under podsup: one Workerman
// process per podsup slot, podsup owns the count.
//
// Workerman's own `start` forks `count` children and keeps a pid file; a
// second `start` with the same pid file refuses to run ("already running")
// and exits 0. Under podsup, which starts `processes` copies of the command,
// that would leave one live server and N-1 slots "done". So each slot gets
// its own pid file (PODSUP_WORKER_ID is the slot, 0..N-1, stable across
// respawns), count stays 1 (podsup's `processes` is the count, podsup
// respawns, recycles and drains), and reusePort lets every slot accept on
// the same port (the kernel spreads connections, SO_REUSEPORT).
//
// Run by examples/php-socket-server.yaml as `php /app/server.php start`
// (foreground: no -d; podsup is the daemon).
require __DIR__ . '/vendor/autoload.php';

use Workerman\Connection\TcpConnection;
use Workerman\Worker;

$slot = getenv('PODSUP_WORKER_ID') ?: '0';
Worker::$pidFile = sys_get_temp_dir() . "/workerman.$slot.pid";
Worker::$logFile = '/dev/stdout';

$server = new Worker('tcp://0.0.0.0:2345');
$server->name = "echo-$slot";
$server->count = 1;          // podsup's `processes` is the count
$server->reusePort = true;   // every slot accepts on port 2345

// Tell podsup when a request is in flight (its busy ratio and requests/s
// drive the HPA): one datagram per line to $PODSUP_REPORT.
$report = getenv('PODSUP_REPORT');
$sock = $report ? socket_create(AF_UNIX, SOCK_DGRAM, 0) : null;
$say = function (string $line) use ($sock, $report): void {
    if ($sock) {
        @socket_sendto($sock, $line, strlen($line), 0, $report);
    }
};

$server->onMessage = function (TcpConnection $connection, string $data) use ($say): void {
    $say('busy');
    $started = microtime(true);
    $connection->send($data);
    $say(sprintf('done %.6f', microtime(true) - $started));
    $say('idle');
};

Worker::runAll();
