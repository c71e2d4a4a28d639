__all__ = []

# %% ../nbs/90_cli.ipynb #5dc95ef8
from .cli import main

if __name__ == "__main__": main()

# %% ../nbs/90_cli.ipynb #13c6d7d4
from .cli import main

if __name__ == "__main__": main()

# %% ../nbs/90_cli.ipynb #13c6d7d4
from .cli import main

if __name__ == "__main__": main()