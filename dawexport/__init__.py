"""dawexport: neural audio synthesis turned into instruments musicians can play.

    $ dawexport build instruments/cat_flute.yaml
"""
__version__ = "0.1.0"
