#!/usr/bin/perl
# Long-running collector (directory 0/): every 15 s, the paging and swapping
# counters of /proc/vmstat as proc.vmstat.<field>, the names of tcollector's
# procstats. Raw counters: the server computes rates. The agent restarts this
# script with back-off if it dies; exit 13 means "not on this host".
use strict;
use warnings;

my $interval = 15;
my %wanted = map { $_ => 1 } qw(pgpgin pgpgout pswpin pswpout pgfault pgmajfault
                                 pgscan_kswapd pgscan_direct pgsteal_kswapd pgsteal_direct oom_kill);

exit 13 unless -r '/proc/vmstat';
$| = 1; # one write per line, so the agent sees points as they are printed

while (1) {
    open(my $fh, '<', '/proc/vmstat') or die "open /proc/vmstat: $!\n";
    my $now = time();
    while (my $line = <$fh>) {
        my ($field, $value) = split ' ', $line;
        print "proc.vmstat.$field $now $value\n" if $wanted{$field};
    }
    close($fh);
    sleep($interval);
}
