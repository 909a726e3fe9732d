"""The plain-torch baseline of the Fig. 3 job, as a command (see tokenswarm.runtime.baselines).

Run: ``python benchmarks/authors_loop.py --d 128 --runs 2048 --beta 1,4 --eta 0.1 --t-max 30``.
"""

from tokenswarm.runtime.baselines import main

if __name__ == "__main__":
    main()
