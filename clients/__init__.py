"""What users import: vendor-shaped clients for the digital twin.

``clients.tem`` looks like Thermo Fisher's AutoScript TEM client and ``clients.afm`` like Nanosurf's
classic scripting interface, so a script written for the instrument changes only its imports.
"""
