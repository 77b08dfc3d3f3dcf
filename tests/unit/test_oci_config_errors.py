"""An OCI config file that cannot be used is a typed error naming the file, the profile and
the line or setting at fault, and never quoting a secret from it."""

from __future__ import annotations

import pytest

from ocimodel.oci.auth import OCIAuthError, api_keys


def test_malformed_config_error_names_the_line_number_not_its_secret(tmp_path):
    config = tmp_path / "config"
    config.write_text(
        "[DEFAULT]\nuser=ocid1.user.oc1..u\npass_phrase hunter2-s3cret\nregion=us-ashburn-1\n"
    )
    with pytest.raises(OCIAuthError) as info:
        api_keys(oci_config_location=str(config), profile="DEFAULT")
    message = str(info.value)
    assert "hunter2" not in message and "s3cret" not in message
    assert str(config) in message and "'DEFAULT'" in message and "line 3" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_config_without_a_section_header_hides_the_line(tmp_path):
    config = tmp_path / "config"
    config.write_text("key_content=-----BEGIN PRIVATE KEY-----topsecret\n")
    with pytest.raises(OCIAuthError, match="line 1") as info:
        api_keys(oci_config_location=str(config), profile="DEFAULT")
    assert "topsecret" not in str(info.value)


def test_missing_key_file_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "keys" / "absent.pem"
    config = tmp_path / "config"
    config.write_text(
        "[DEV]\nuser=ocid1.user.oc1..u\nfingerprint=aa:bb\ntenancy=ocid1.tenancy.oc1..t\n"
        f"region=us-ashburn-1\nkey_file={missing}\npass_phrase=hunter2\n"
    )
    with pytest.raises(OCIAuthError) as info:
        api_keys(oci_config_location=str(config), profile="DEV")
    message = str(info.value)
    assert str(missing) in message and "'DEV'" in message and "key_file" in message
    assert "hunter2" not in message
    assert info.value.__suppress_context__
