"""What the roles share: secrets, database logins, peers, staging and validation, archives, unit installs."""
