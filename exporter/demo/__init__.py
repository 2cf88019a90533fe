"""The built-in demo: a simulated AWS (moto) holding every case of the seed article."""
