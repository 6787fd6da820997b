def write_reports(d):
    pass
