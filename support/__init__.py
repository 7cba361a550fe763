"""What the tests and the benchmarks both need, owned by neither: starting the app as a real server (server).

It lives apart so that benchmarks/ never imports tests/ (tests may import benchmarks, to test them) and gan_core never
learns the repository's layout. Nothing here is part of the product: the dashboard and the engine never import it.
"""
