"""`avdf bench dag`'s summary line: wall time, CPU time, core use and the floor CPU time sets."""
from benchmark.perf.dag import dag_summary


def test_summary_gives_core_use_and_the_floor_every_busy_core_would_reach():
    # Worked by hand: 1923 CPU-s over 1094 s on 2 cores is 1.76 cores busy (88 %); with both busy
    # throughout, the same work takes 1923 / 2 = 961.5 s, 1.60x the 600 s goal.
    line = dag_summary(wall=1094.0, cpu=1923.0, cores=2)
    assert line == ("DAG wall 1094 s (1.82x the 600 s goal); CPU 1923 s; core use 1.76 of 2 cores (88%); "
                    "floor with every core busy 962 s (1.60x the goal)")
