from torch_liberator.cli import main
if __name__ == "__main__": raise SystemExit(main())  # NOQA: E701
