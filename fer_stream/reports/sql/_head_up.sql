-- head_up_frames(course, date_from, date_to, video): the head-up rate of every sampled frame of
-- lectures_in(course, date_from, date_to, video), the measure smart-classroom studies report.
-- Registered by fer_stream.reports.connect once the faces and frames views exist.
--
-- * students_present = the lecture's students: distinct student_id of its faces (static faces,
--   pictures on a wall, have no student_id and are never present).
-- * in a frame each present student is up (head_state 'up': facing the front), not up (down,
--   around or phone) or unknown: not seen in that frame, or seen too small to read a head state.
--   Unknown is never counted as up or as not up.
-- * students_known = up + not up; head_up_rate = up / known (null when no head state was read);
--   head_known_share = known / present: how much of the class the rate speaks for.
create or replace temp macro head_up_frames(want_course, want_from, want_to, want_video) as table
    with

    scope as (
        select video_id from lectures_in(want_course, want_from, want_to, want_video)
    ),

    present as (
        select video_id, count(distinct student_id) as students_present
        from faces
        where video_id in (select video_id from scope) and student_id is not null
        group by video_id
    ),

    seen as (
        -- one row per student per frame (the tracker gives a student at most one face a frame)
        select
            video_id,
            frame_index,
            count(*) filter (where head_state = 'up') as students_up,
            count(head_state) as students_known
        from faces
        where video_id in (select video_id from scope) and student_id is not null
        group by video_id, frame_index
    ),

    final as (
        select
            frames.video_id,
            frames.frame_index,
            frames.pts_s,
            coalesce(present.students_present, 0) as students_present,
            coalesce(seen.students_up, 0) as students_up,
            coalesce(seen.students_known, 0) as students_known,
            seen.students_up / nullif(seen.students_known, 0) as head_up_rate,
            coalesce(seen.students_known, 0) / nullif(present.students_present, 0) as head_known_share
        from frames
        left join present on frames.video_id = present.video_id
        left join seen on frames.video_id = seen.video_id and frames.frame_index = seen.frame_index
        where frames.video_id in (select video_id from scope)
    )

    select * from final;
