"""Data sets and data preparation: MNIST, breast cancer and e-mail spam (shipped), XOR, circles."""
from .idx import IDXFormatError, parse_idx, read_idx
from .loaders import load_breast_cancer, load_mnist_split, load_mnist_test
from .preprocessing import StandardScaler, train_test_split
from .spam import load_spam, load_spam_split
from .synthetic import circles, xor

__all__ = ["xor", "circles", "load_breast_cancer", "load_mnist_test", "load_mnist_split",
           "load_spam", "load_spam_split",
           "read_idx", "parse_idx", "IDXFormatError", "train_test_split", "StandardScaler"]
