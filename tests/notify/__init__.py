"""Tests of tuijin.notify: notify(), delivery to e-mail and robots, inbox, robots admin, scheduler, faults."""
