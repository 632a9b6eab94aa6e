import os


def prefer_sleeping_openmp_threads() -> None:
    """Make torch's OpenMP threads sleep, not spin, while they wait for each other.

    Training threads meet at every step. Spinning while waiting (OpenMP's default) made each
    step of a 2-thread training 2.4x slower with another job on one of two cores; sleeping
    costs about 6 % on a quiet machine (tools/omp_wait_policy.py measures both). OpenMP reads
    the variable once, when torch loads, so the entry points call this first. An operator's
    own setting is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
