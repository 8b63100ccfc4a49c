"""The copy engine between sources and destinations, and the local blob cache it reads from.

Modules: ``engine`` (copy_images), ``plan``, ``sources``, ``destinations``, ``staged``,
``units``, ``blobcache``. Nothing is imported here: the archive modules and these import each
other's leaves, and a package that re-exported them would tie the two in a cycle.
"""
