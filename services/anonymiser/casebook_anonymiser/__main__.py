"""Run the anonymiser service: `python -m casebook_anonymiser`."""

from casebook_anonymiser.main import create_app
from casebook_anonymiser.settings import Settings
from casebook_platform.service import serve


def main() -> None:
    settings = Settings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
