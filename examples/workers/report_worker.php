<?php
// A PHP worker speaking podsup's report protocol: one line per datagram to the
// Unix datagram socket in PODSUP_REPORT, with PHP's built-in "udg://" stream
// transport (no extension needed). Without podsup every report is a no-op.
//
//   podsup run --workers 4 -- php examples/workers/report_worker.php
//
// JOB_SECONDS (default 0.2): length of each fake job; JOBS (default 0 =
// forever): jobs to do before exiting 0.

final class PodsupReporter
{
    /** @var resource|null */
    private $socket = null;

    public function __construct(?string $path)
    {
        if ($path !== null && $path !== '') {
            $socket = @stream_socket_client('udg://' . $path, $errno, $errstr);
            $this->socket = $socket === false ? null : $socket;
        }
    }

    public function send(string $line): void
    {
        if ($this->socket !== null) {
            @fwrite($this->socket, $line); // one fwrite = one datagram; dropped if podsup is gone
        }
    }

    public function heartbeat(): void { $this->send('heartbeat'); }
    public function busy(): void { $this->send('busy'); }
    public function idle(): void { $this->send('idle'); }
    public function done(float $seconds): void { $this->send(sprintf('done %.6f', $seconds)); }
    public function queue(string $name, float $depth): void { $this->send("queue $name $depth"); }

    /** Run one job between "busy" and "done <seconds>". */
    public function job(callable $work): void
    {
        $this->busy();
        $start = microtime(true);
        try {
            $work();
        } finally {
            $this->done(microtime(true) - $start);
        }
    }
}

$report = new PodsupReporter(getenv('PODSUP_REPORT') ?: null);
$jobSeconds = (float)(getenv('JOB_SECONDS') ?: 0.2);
$jobs = (int)(getenv('JOBS') ?: 0);
$slot = getenv('PODSUP_WORKER_ID');
if ($slot === false) {
    $slot = '?';  // not under podsup ("0" is a slot: no ?: here)
}

fwrite(STDOUT, "php worker $slot (pid " . getmypid() . ") ready\n");
$report->heartbeat();
for ($done = 0; $jobs === 0 || $done < $jobs; $done++) {
    $report->job(function () use ($jobSeconds) { usleep((int)($jobSeconds * 1e6)); });
}
exit(0);
