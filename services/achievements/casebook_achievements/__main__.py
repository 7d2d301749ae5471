"""Run the achievements service: `python -m casebook_achievements`."""

from casebook_achievements.main import create_app
from casebook_achievements.settings import Settings
from casebook_platform.service import serve


def main() -> None:
    settings = Settings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
