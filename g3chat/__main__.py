from __future__ import annotations

from g3chat.cli import main

if __name__ == "__main__":
    main()
