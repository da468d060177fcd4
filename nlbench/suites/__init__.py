"""Suite files shipped with nlbench; `nlbench run NAME` finds them here."""
