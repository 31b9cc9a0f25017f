"""The control socket's server side: ``podsup status|scale|reload|drain`` land here."""
