"""Run the gateway service: `python -m casebook_gateway`."""

from casebook_gateway.main import create_app
from casebook_gateway.settings import Settings
from casebook_platform.service import serve


def main() -> None:
    settings = Settings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main()
