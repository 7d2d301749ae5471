"""Run the export service: `python -m casebook_export`."""

from casebook_export.main import create_app
from casebook_export.settings import Settings
from casebook_platform.service import serve


def main() -> None:
    settings = Settings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
