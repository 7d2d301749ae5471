"""Run the moderation service: `python -m casebook_moderation`."""

from casebook_moderation.main import create_app
from casebook_moderation.settings import Settings
from casebook_platform.service import serve


def main() -> None:
    settings = Settings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
