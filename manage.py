#!/usr/bin/env python
import sys

from valence_site.cli import main

if __name__ == "__main__":
    main(sys.argv)
