"""Run the featuring service: `python -m casebook_featuring`."""

from casebook_featuring.main import create_app
from casebook_featuring.settings import Settings
from casebook_platform.service import serve


def main() -> None:
    settings = Settings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
