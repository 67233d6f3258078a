"""edgebook's tests (a package: helpers are imported as tests.support.*)."""
